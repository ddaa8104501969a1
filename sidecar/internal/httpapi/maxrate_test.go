package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
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

// With ?filter= too, the rate applies to the events the filter kept, and
// a marker counts only those: its range may hold seqs the filter left
// out, which are not this subscriber's to miss.
func TestMaxRateAfterFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"mf"}`)
	e.publish("mf", 300) // seq i+1 holds {"n":i}: the filter keeps the odd seqs
	even := url.QueryEscape(`int(data.n) % 2 == 0`)
	for _, route := range []string{"/api/v1/streams/mf/sse", "/api/v1/streams/mf/ws"} {
		t.Run(route, func(t *testing.T) {
			var next func() (seq uint64, typ string, data []byte)
			if strings.HasSuffix(route, "/ws") {
				c, code := e.dialWS(route + "?from=start&max_rate=20&filter=" + even)
				if c == nil {
					t.Fatalf("upgrade: %d", code)
				}
				next = func() (uint64, string, []byte) { env := readEnvelope(t, c); return env.Seq, env.Type, env.Data }
			} else {
				r := e.openSSE(route + "?from=start&max_rate=20&event_types=1&filter=" + even)
				next = func() (uint64, string, []byte) {
					f := r.nextEvent(t)
					seq, _ := strconv.ParseUint(f.id, 10, 64)
					return seq, f.event, []byte(f.data)
				}
			}
			covered, delivered, skipped := uint64(0), 0, uint64(0)
			for i := 0; covered < 299 && i < 1000; i++ {
				seq, typ, data := next()
				switch typ {
				case "line":
					if seq%2 != 1 || seq <= covered {
						t.Fatalf("delivered seq %d after %d", seq, covered)
					}
					delivered++
					covered = seq
				case api.TypeSkipped:
					var s api.Skipped
					if err := json.Unmarshal(data, &s); err != nil || s.From != covered+2 || s.From%2 != 1 || s.To%2 != 1 ||
						s.Skipped != (s.To-s.From)/2+1 || seq != s.From-1 {
						t.Fatalf("marker %d %s after %d", seq, data, covered)
					}
					skipped += s.Skipped
					covered = s.To
				default:
					t.Fatalf("unexpected %d %s %s", seq, typ, data)
				}
			}
			if covered != 299 || uint64(delivered)+skipped != 150 || skipped == 0 {
				t.Fatalf("covered to %d: delivered %d + skipped %d of 150 kept", covered, delivered, skipped)
			}
		})
	}
}
