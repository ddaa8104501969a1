package httpapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/api"
)

func TestMaxRateRefusesBadValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"mr"}`)
	routes := []string{"/magic", "/time", "/sse/fib", "/sse/log/mr", "/sse/track/u1", "/ws/track/u1",
		"/api/v1/streams/mr/sse", "/api/v1/streams/mr/ws"}
	for _, v := range []string{"0", "-1", "abc", "1.5", "", "1e3", "1000001", "99999999999999999999999"} {
		for _, route := range routes {
			t.Run(route+"="+v, func(t *testing.T) {
				code, hdr, body := e.do("GET", route+"?max_rate="+v, "")
				var eb api.ErrorBody
				if code != 400 || hdr.Get("Content-Type") != jsonContentType || json.Unmarshal(body, &eb) != nil ||
					eb.Error.Code != "invalid_query" || len(eb.Error.Fields) != 1 || eb.Error.Fields[0].Field != "max_rate" {
					t.Fatalf("%d %s", code, body)
				}
			})
		}
	}
}

// accountant checks a thinned delivery: every seq of the stream is
// either delivered or counted by a skipped marker, in order.
type accountant struct {
	next             uint64 // the seq expected next
	delivered, skips uint64
}

func (a *accountant) event(t *testing.T, seq uint64) {
	t.Helper()
	if seq != a.next {
		t.Fatalf("delivered seq %d, expected %d (delivered %d, skipped %d)", seq, a.next, a.delivered, a.skips)
	}
	a.delivered++
	a.next++
}

// skipped checks a marker: its id (seq) is the position before its range,
// so resuming from it loses nothing.
func (a *accountant) skipped(t *testing.T, seq uint64, data []byte) {
	t.Helper()
	var s api.Skipped
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("skipped data %s: %v", data, err)
	}
	if s.From != a.next || s.To < s.From || s.Skipped != s.To-s.From+1 || seq != s.From-1 {
		t.Fatalf("skipped marker seq %d %s, expected from %d", seq, data, a.next)
	}
	a.skips += s.Skipped
	a.next = s.To + 1
}

func TestMaxRateSSEReportsSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, route := range []string{"/api/v1/streams/%s/sse", "/sse/log/%s"} {
		e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"mr"}`)
		e.publish("mr", 300)
		r := e.openSSE(fmt.Sprintf(route, "mr") + "?from=start&max_rate=20")
		a := accountant{next: 1}
		markers := 0
		for i := 0; a.next <= 300 && i < 1000; i++ {
			f := r.nextEvent(t)
			seq, err := strconv.ParseUint(f.id, 10, 64)
			if err != nil {
				t.Fatalf("frame %+v", f)
			}
			switch f.event {
			case "":
				a.event(t, seq)
			case "skipped":
				a.skipped(t, seq, []byte(f.data))
				markers++
			default:
				t.Fatalf("unexpected %+v", f)
			}
		}
		// 300 events at once, 20 a second with a bucket of 2: the first
		// two pass, the rest is reported by a marker (sent on its own
		// when the rate allows an event again and none came; a stalled
		// machine may let a few more pass and report more markers).
		if a.next != 301 || a.delivered < 2 || a.skips < 250 || markers < 1 {
			t.Fatalf("%s: next %d, delivered %d, skipped %d in %d markers", route, a.next, a.delivered, a.skips, markers)
		}
		// A live event after the marker is delivered with its true id.
		e.publish("mr", 1)
		if f := r.nextEvent(t); f.id != "301" || f.event != "" {
			t.Fatalf("%s: live event %+v", route, f)
		}
		if code, _, body := e.do("DELETE", "/api/v1/emitters/mr", ""); code != 204 {
			t.Fatalf("delete: %d %s", code, body)
		}
	}
}

func TestMaxRateWSReportsSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"mw"}`)
	e.publish("mw", 300)
	c, code := e.dialWS("/api/v1/streams/mw/ws?from=start&max_rate=20")
	if c == nil {
		t.Fatalf("upgrade: %d", code)
	}
	a := accountant{next: 1}
	markers := 0
	for i := 0; a.next <= 300 && i < 1000; i++ {
		env := readEnvelope(t, c)
		switch env.Type {
		case "line":
			a.event(t, env.Seq)
		case api.TypeSkipped:
			if s, ok := env.SkippedRange(); !ok || env.Stream != "mw" || env.Time.IsZero() {
				t.Fatalf("marker %+v (%+v)", env, s)
			}
			a.skipped(t, env.Seq, env.Data)
			markers++
		default:
			t.Fatalf("unexpected %+v", env)
		}
	}
	if a.next != 301 || a.delivered < 2 || a.skips < 250 || markers < 1 {
		t.Fatalf("next %d, delivered %d, skipped %d in %d markers", a.next, a.delivered, a.skips, markers)
	}
	e.publish("mw", 1)
	if env := readEnvelope(t, c); env.Seq != 301 || env.Type != "line" {
		t.Fatalf("live event %+v", env)
	}
}

// A {"resume"} while events are left out unreported: the marker goes out
// before the restart, and the restarted stream is accounted for again
// from the resume point.
func TestMaxRateWSResumeReportsFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"mx"}`)
	e.publish("mx", 10)
	c, code := e.dialWS("/api/v1/streams/mx/ws?from=start&max_rate=5")
	if c == nil {
		t.Fatalf("upgrade: %d", code)
	}
	if env := readEnvelope(t, c); env.Seq != 1 || env.Type != "line" {
		t.Fatalf("first: %+v", env)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"resume":0}`)); err != nil {
		t.Fatal(err)
	}
	// Before the restart: what was left out of 2..10.
	a := accountant{next: 2}
	for i := 0; a.next <= 10 && i < 20; i++ {
		env := readEnvelope(t, c)
		if env.Type == api.TypeSkipped {
			a.skipped(t, env.Seq, env.Data)
		} else {
			a.event(t, env.Seq)
		}
	}
	// After it: 1..10 again, delivered or reported.
	a = accountant{next: 1}
	for i := 0; a.next <= 10 && i < 20; i++ {
		env := readEnvelope(t, c)
		if env.Type == api.TypeSkipped {
			a.skipped(t, env.Seq, env.Data)
		} else {
			a.event(t, env.Seq)
		}
	}
	if a.next != 11 || a.skips == 0 {
		t.Fatalf("after resume: next %d, delivered %d, skipped %d", a.next, a.delivered, a.skips)
	}
}
