package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// TestFilterOverSSEWSAndHistory: ?filter= on the built binary keeps only
// the matching events of a tracker stream on SSE, WebSocket and a
// history page, live events included, and refuses a bad expression
// with a 400 naming its position.
func TestFilterOverSSEWSAndHistory(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	post := func(level string, n int) uint64 {
		t.Helper()
		var a struct{ Seq uint64 }
		if code := do(t, http.MethodPost, sc.URL("/track/ops"), fmt.Sprintf(`{"level":%q,"n":%d}`, level, n), &a); code != http.StatusAccepted {
			t.Fatalf("publish: %d", code)
		}
		return a.Seq
	}
	var errs []uint64
	for n := 1; n <= 9; n++ {
		level := "info"
		if n%3 == 0 {
			level = "error"
		}
		if seq := post(level, n); level == "error" {
			errs = append(errs, seq)
		}
	}
	q := "filter=" + url.QueryEscape(`data.level == "error" && data.n > 3`) // n 6 and 9
	base := sc.URL("/api/v1/streams/track:ops")

	var page struct {
		Events []api.Event
		Next   uint64
	}
	if code := do(t, http.MethodGet, base+"/events?"+q, "", &page); code != http.StatusOK ||
		len(page.Events) != 2 || page.Events[0].Seq != errs[1] || page.Events[1].Seq != errs[2] {
		t.Fatalf("history page: %d %+v, want seqs %v", code, page, errs[1:])
	}

	sse := openSSE(t, base+"/sse?from=start&"+q, "")
	ws := dialWS(t, base+"/ws?after=0&"+q)
	post("error", 1) // does not match: n is not > 3
	post("info", 10) // does not match: not an error
	live := post("error", 12)
	for _, want := range []uint64{errs[1], errs[2], live} {
		ev, err := sse.Next()
		if err != nil || ev.ID != want || !strings.Contains(ev.Data, `"error"`) {
			t.Fatalf("SSE: %+v %v, want seq %d", ev, err, want)
		}
		var env api.Event
		readEnvelope(t, ws, &env)
		if env.Seq != want {
			t.Fatalf("WS: seq %d, want %d", env.Seq, want)
		}
	}

	for _, route := range []string{"/events", "/sse", "/ws"} {
		a := send(t, http.MethodGet, base+route+"?filter="+url.QueryEscape(`data.level ==`), "",
			map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"})
		if a.status != http.StatusBadRequest || a.errorCode() != "invalid_filter" || !strings.Contains(string(a.body), "1:14") {
			t.Fatalf("%s bad filter: %d %s", route, a.status, a.body)
		}
	}
}

// sidestream tail --filter follows a chatty emitter printing only the
// events the expression matches, over SSE and WS; a bad expression ends
// tail with status 1 and the server's message naming the position.
func TestTailFilter(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	id := fastEmitter(t, sc) // magic: {"magic":<random int64>,"timestamp":…}, about half of them > 0
	for _, transport := range []string{"sse", "ws"} {
		p := startTail(t, "--server", sc.URL(""), "--transport", transport, "--output", "json", "--filter", "data.magic > 0", id)
		var last uint64
		jumps := 0
		for i := 0; i < 50; i++ { // unfiltered, 50 events all > 0 would be a 2^-50 chance
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
			var ev struct {
				Stream string
				Seq    uint64
				Data   struct{ Magic json.Number }
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Stream != id {
				t.Fatalf("%s: tail printed %q: %v", transport, line, err)
			}
			if m, err := ev.Data.Magic.Int64(); err != nil || m <= 0 {
				t.Fatalf("%s: seq %d does not match data.magic > 0: %q", transport, ev.Seq, line)
			}
			if last != 0 && ev.Seq <= last {
				t.Fatalf("%s: seq %d after %d", transport, ev.Seq, last)
			}
			if last != 0 && ev.Seq > last+1 {
				jumps++ // the events between were left out by the server
			}
			last = ev.Seq
		}
		if jumps == 0 {
			t.Fatalf("%s: 50 consecutive seqs: nothing was filtered out", transport)
		}
	}
	for _, transport := range []string{"sse", "ws"} {
		p := startTail(t, "--server", sc.URL(""), "--transport", transport, "--filter", "data.magic >", id)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second): // a hang guard, not a check
			t.Fatalf("%s: tail with a bad filter still runs; stderr:\n%s", transport, p.Stderr())
		}
		stderr := p.Stderr()
		if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr, "invalid_filter") ||
			!strings.Contains(stderr, "1:13") || strings.Contains(stderr, "goroutine") {
			t.Fatalf("%s: tail --filter 'data.magic >': exit %d, stderr:\n%s", transport, code, stderr)
		}
	}
}
