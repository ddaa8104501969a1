package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// thinned follows a stream served with ?max_rate: every seq must be
// either delivered or counted by a skipped marker, in order, no gap
// unaccounted for.
type thinned struct {
	t                  *testing.T
	next               uint64 // 0 until the first frame
	delivered, skipped uint64
	markers            int
	lastID             uint64 // what an EventSource keeps as Last-Event-ID
}

func (a *thinned) event(seq uint64) {
	a.t.Helper()
	if a.next != 0 && seq != a.next {
		a.t.Fatalf("delivered seq %d, expected %d: a seq neither delivered nor reported skipped", seq, a.next)
	}
	a.delivered++
	a.next, a.lastID = seq+1, seq
}

func (a *thinned) marker(seq uint64, data []byte) {
	a.t.Helper()
	var s api.Skipped
	if err := json.Unmarshal(data, &s); err != nil {
		a.t.Fatalf("skipped data %s: %v", data, err)
	}
	if (a.next != 0 && s.From != a.next) || s.To < s.From || s.Skipped != s.To-s.From+1 || seq != s.From-1 {
		a.t.Fatalf("skipped marker id %d %s, expected from %d", seq, data, a.next)
	}
	a.skipped += s.Skipped
	a.markers++
	a.next, a.lastID = s.To+1, seq
}

// enough: a stretch of the stream long enough to have been thinned
// several times.
func (a *thinned) enough() bool { return a.markers >= 5 && a.delivered >= 5 }

// fastEmitter creates a magic emitter of 1000 events a second.
func fastEmitter(t *testing.T, sc *sidecar) string {
	t.Helper()
	var m struct{ ID string }
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"magic","config":{"rate":1000}}`, &m); code != http.StatusCreated {
		t.Fatalf("create magic: %d", code)
	}
	return m.ID
}

func TestMaxRateThinsSSEAndAccountsForEverySeq(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	id := fastEmitter(t, sc)
	url := sc.URL("/api/v1/streams/" + id + "/sse?max_rate=20")
	s := openSSE(t, url, "")
	guard := time.AfterFunc(60*time.Second, s.Close) // a hang guard, not a check
	defer guard.Stop()
	a := &thinned{t: t}
	for i := 0; i < 10_000 && !a.enough(); i++ {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("after %d delivered, %d skipped: %v", a.delivered, a.skipped, err)
		}
		switch ev.Event {
		case "":
			a.event(ev.ID)
		case api.TypeSkipped:
			a.marker(ev.ID, []byte(ev.Data))
		default:
			t.Fatalf("unexpected %s event %d", ev.Event, ev.ID)
		}
	}
	if !a.enough() {
		t.Fatalf("delivered %d, skipped %d in %d markers", a.delivered, a.skipped, a.markers)
	}
	// A 1000/s stream at 20/s: far more left out than delivered.
	if a.skipped < 5*a.delivered {
		t.Fatalf("delivered %d, skipped only %d", a.delivered, a.skipped)
	}
	// What was left out is counted for operators too: the metric moves
	// after the write the client read, so it is waited for.
	magic := map[string]string{"sidestream_stream_kind": "magic", "sidestream_drop_reason": "max_rate"}
	eventually(t, "events dropped for max_rate in /metrics", 30*time.Second, func() bool {
		return metricValue(scrapeMetrics(t, sc), "sidestream_events_dropped_total", magic) >= float64(a.skipped)
	})
	s.Close()

	// Resuming with the Last-Event-ID an EventSource kept continues
	// right after it: nothing after the last delivered event is lost.
	r := openSSE(t, url, strconv.FormatUint(a.lastID, 10))
	ev, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := a.lastID + 1
	switch ev.Event {
	case "":
		if ev.ID != want {
			t.Fatalf("resumed at event %d, want %d", ev.ID, want)
		}
	case api.TypeSkipped:
		var sk api.Skipped
		if err := json.Unmarshal([]byte(ev.Data), &sk); err != nil || sk.From != want {
			t.Fatalf("resumed with marker %s, want from %d", ev.Data, want)
		}
	default:
		t.Fatalf("resumed with %s event %d %s", ev.Event, ev.ID, ev.Data)
	}
}

func TestMaxRateThinsWSAndAccountsForEverySeq(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	id := fastEmitter(t, sc)
	ws := dialWS(t, sc.URL("/api/v1/streams/"+id+"/ws?max_rate=20"))
	a := &thinned{t: t}
	for i := 0; i < 10_000 && !a.enough(); i++ {
		var env api.Event
		readEnvelope(t, ws, &env)
		switch env.Type {
		case api.TypeSkipped:
			a.marker(env.Seq, env.Data)
		case api.TypeGap, api.TypeReset, "offline":
			t.Fatalf("unexpected %+v", env)
		default:
			a.event(env.Seq)
		}
	}
	if !a.enough() || a.skipped < 5*a.delivered {
		t.Fatalf("delivered %d, skipped %d in %d markers", a.delivered, a.skipped, a.markers)
	}
}

func TestMaxRateBadValuesAre400(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	for _, path := range []string{"/api/v1/streams/time/sse", "/api/v1/streams/time/ws", "/magic", "/time"} {
		for _, v := range []string{"0", "-5", "ten", "2.5", "1000001", "18446744073709551616"} {
			a := send(t, http.MethodGet, sc.URL(path+"?max_rate="+v), "", nil)
			if a.status != http.StatusBadRequest || a.errorCode() != "invalid_query" {
				t.Fatalf("%s?max_rate=%s: %d %s", path, v, a.status, a.body)
			}
		}
	}
}

// sidestream tail --max-rate prints the thinned stream and the markers
// that account for what was left out, over SSE and WS.
func TestTailMaxRate(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	id := fastEmitter(t, sc)
	for _, transport := range []string{"sse", "ws"} {
		p := startTail(t, "--server", sc.URL(""), "--transport", transport, "--output", "json", "--max-rate", "20", id)
		a := &thinned{t: t}
		for i := 0; i < 10_000 && !a.enough(); i++ {
			var line string
			select {
			case l, ok := <-p.lines:
				if !ok {
					t.Fatalf("%s: tail ended; stderr:\n%s", transport, p.Stderr())
				}
				line = l
			case <-time.After(60 * time.Second): // a hang guard, not a check
				t.Fatalf("%s: no line from tail for 60s; stderr:\n%s", transport, p.Stderr())
			}
			var ev api.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: tail printed %q: %v", transport, line, err)
			}
			if ev.IsSkipped() {
				a.marker(ev.Seq, ev.Data)
			} else {
				a.event(ev.Seq)
			}
		}
		if !a.enough() || a.skipped < 5*a.delivered {
			t.Fatalf("%s: delivered %d, skipped %d in %d markers", transport, a.delivered, a.skipped, a.markers)
		}
	}
	// A rate the server refuses ends tail with its message and status 1.
	p := startTail(t, "--server", sc.URL(""), "--max-rate", "2000000", id)
	<-p.done
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.Stderr(), "max_rate") {
		t.Fatalf("tail --max-rate 2000000: exit %d, stderr:\n%s", code, p.Stderr())
	}
}
