package httpapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

// twoAndFive keeps the events whose data.n is 2 or 5: seqs 3 and 6 of
// each ten e.publish makes.
var twoAndFive = "&filter=" + url.QueryEscape(`data.n == 2 || data.n == 5`)

func TestFilterSSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"f1"}`)
	e.publish("f1", 10)
	for _, path := range []string{"/api/v1/streams/f1/sse?from=start" + twoAndFive, "/sse/log/f1?from=start" + twoAndFive} {
		r := e.openSSE(path)
		for _, want := range []string{"3", "6"} {
			if f := r.nextEvent(t); f.id != want {
				t.Fatalf("%s: id %q, want %q", path, f.id, want)
			}
		}
	}
	r := e.openSSE("/api/v1/streams/f1/sse?after=6" + twoAndFive)
	e.publish("f1", 10) // seqs 11..20: 13 and 16 match
	for _, want := range []string{"13", "16"} {
		if f := r.nextEvent(t); f.id != want {
			t.Fatalf("live: id %q, want %q", f.id, want)
		}
	}
}

func TestFilterWS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"f2"}`)
	e.publish("f2", 10)
	c, code := e.dialWS("/api/v1/streams/f2/ws?after=0" + twoAndFive)
	if c == nil {
		t.Fatalf("upgrade: %d", code)
	}
	e.publish("f2", 10)
	for _, want := range []uint64{3, 6, 13, 16} {
		if env := readEnvelope(t, c); env.Seq != want {
			t.Fatalf("seq %d, want %d", env.Seq, want)
		}
	}
}

func TestFilterHistoryPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"f3"}`)
	e.publish("f3", 10)
	type page struct {
		Events     []api.Event
		Next, Head uint64
	}
	get := func(q string) page {
		t.Helper()
		code, _, body := e.do("GET", "/api/v1/streams/f3/events?"+q+twoAndFive, "")
		var p page
		if code != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("%s: %d %s", q, code, body)
		}
		return p
	}
	// One match per page; next continues after it.
	p := get("limit=1")
	if len(p.Events) != 1 || p.Events[0].Seq != 3 || p.Next != 3 {
		t.Fatalf("first page %+v", p)
	}
	p = get("limit=1&after=3")
	if len(p.Events) != 1 || p.Events[0].Seq != 6 || p.Next != 6 {
		t.Fatalf("second page %+v", p)
	}
	// No match left: an empty page whose next is the last seq looked at.
	p = get("limit=5&after=6")
	if len(p.Events) != 0 || p.Next != 10 || p.Head != 10 {
		t.Fatalf("last page %+v", p)
	}
	// The legacy page, newest first in pages, oldest first inside one.
	code, _, body := e.do("GET", "/log/f3?limit=1"+twoAndFive, "")
	var lp api.LogPage
	if code != 200 || json.Unmarshal(body, &lp) != nil || len(lp.Events) != 1 || lp.Events[0].Seq != 6 || lp.Prev != 6 {
		t.Fatalf("log page: %d %s", code, body)
	}
	code, _, body = e.do("GET", "/log/f3?limit=5&before=6"+twoAndFive, "")
	lp = api.LogPage{}
	if code != 200 || json.Unmarshal(body, &lp) != nil || len(lp.Events) != 1 || lp.Events[0].Seq != 3 || lp.Prev != 0 {
		t.Fatalf("older log page: %d %s", code, body)
	}
}

func TestFilterBadExpressionIs400(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"f4"}`)
	for _, tc := range []struct{ expr, pos string }{
		{`type ==`, "1:8"},
		{`data.n > 1 && nope`, "1:15"},
		{`seq + 1`, "1:1"}, // not a boolean
		{``, "1:1"},
	} {
		for _, route := range []string{"/api/v1/streams/f4/sse", "/api/v1/streams/f4/ws", "/api/v1/streams/f4/events",
			"/log/f4", "/sse/log/f4", "/magic"} {
			code, hdr, body := e.do("GET", route+"?filter="+url.QueryEscape(tc.expr), "", "Upgrade", "websocket", "Connection", "Upgrade")
			var eb api.ErrorBody
			if code != 400 || hdr.Get("Content-Type") != jsonContentType || json.Unmarshal(body, &eb) != nil {
				t.Fatalf("%s %q: %d %s", route, tc.expr, code, body)
			}
			if eb.Error.Code != "invalid_filter" || !strings.Contains(eb.Error.Message, tc.pos) ||
				len(eb.Error.Fields) != 1 || eb.Error.Fields[0].Field != "filter" {
				t.Fatalf("%s %q: %+v, want invalid_filter at %s", route, tc.expr, eb.Error, tc.pos)
			}
		}
	}
}
