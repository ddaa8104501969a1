package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

func TestFibRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sse := e.openSSE("/sse/fib")
	if _, err := sse.next(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		method, path, want string
	}{
		{"GET", "/fib/current", `{"position":0,"value":"0"}`},
		{"GET", "/fib/next", `{"position":1,"value":"1"}`},
		{"POST", "/fib/next", `{"position":2,"value":"1"}`},
		{"GET", "/fib/next", `{"position":3,"value":"2"}`},
		{"POST", "/fib/previous", `{"position":2,"value":"1"}`},
		{"GET", "/fib/reset", `{"position":0,"value":"0"}`},
		{"GET", "/fib/previous", `{"position":0,"value":"0"}`},
	}
	for _, s := range steps {
		code, hdr, body := e.do(s.method, s.path, "")
		if code != 200 || string(body) != s.want || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: %d %s, want %s", s.method, s.path, code, body, s.want)
		}
	}
	// Every command is a change streamed on /sse/fib, in order.
	for i, s := range steps {
		f := sse.nextEvent(t)
		if f.data != s.want || f.id != fmt.Sprint(i+1) {
			t.Fatalf("sse %d: %+v, want %s", i, f, s.want)
		}
	}
	code, _, body := e.do("GET", "/fib", "")
	if code != 200 || !strings.Contains(string(body), `"/fib/next"`) || !strings.Contains(string(body), `"/sse/fib"`) {
		t.Fatalf("GET /fib: %d %s", code, body)
	}
}

func TestLogPageAndCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	code, _, body := e.do("PUT", "/log", `{"source":"synthetic","rate":50,"guest":"vm-17","retention":{"persist":true,"max_events":100,"max_age":"1h"}}`)
	var created struct{ ID string }
	if code != 201 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("PUT /log: %d %s", code, body)
	}
	spec, _ := e.ems.Get(t.Context(), created.ID)
	if spec.Kind != "log" || spec.Labels["guest"] != "vm-17" || spec.Retention.MaxEvents != 100 ||
		string(spec.Config) != `{"guest":"vm-17","rate":50,"source":"synthetic"}` {
		t.Fatalf("spec %+v config %s", spec, spec.Config)
	}
	e.publish(created.ID, 25)
	type page struct {
		Events []api.Event
		Prev   *uint64
	}
	get := func(q string) page {
		code, _, body := e.do("GET", "/log/"+created.ID+q, "")
		var p page
		if code != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("GET /log%s: %d %s", q, code, body)
		}
		return p
	}
	p := get("?limit=10")
	if len(p.Events) != 10 || p.Events[0].Seq != 16 || p.Events[9].Seq != 25 || p.Prev == nil || *p.Prev != 16 {
		t.Fatalf("newest page: %d events, prev %v", len(p.Events), p.Prev)
	}
	p = get(fmt.Sprintf("?limit=10&before=%d", *p.Prev))
	if len(p.Events) != 10 || p.Events[0].Seq != 6 || p.Events[9].Seq != 15 {
		t.Fatalf("second page: %+v", p.Events)
	}
	p = get(fmt.Sprintf("?limit=10&before=%d", *p.Prev))
	if len(p.Events) != 5 || p.Events[0].Seq != 1 || p.Prev != nil {
		t.Fatalf("last page: %d events, prev %v", len(p.Events), p.Prev)
	}
	// Default: no body is a synthetic source at 10 lines/s.
	_, _, body = e.do("PUT", "/log", "")
	_ = json.Unmarshal(body, &created)
	spec, _ = e.ems.Get(t.Context(), created.ID)
	if string(spec.Config) != `{"rate":10,"source":"synthetic"}` || spec.Labels != nil {
		t.Fatalf("default config %s labels %v", spec.Config, spec.Labels)
	}
}

func TestEmittersAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for i, guest := range []string{"vm-17", "vm-18", "vm-17"} {
		body := fmt.Sprintf(`{"kind":"log","id":"e%d","config":{"rate":5},"labels":{"guest":%q},"retention":{"persist":false}}`, i, guest)
		code, hdr, resp := e.do("POST", "/api/v1/emitters", body)
		var spec struct {
			ID, Kind  string
			Config    json.RawMessage
			Labels    map[string]string
			Retention struct{ Persist bool }
		}
		if code != 201 || json.Unmarshal(resp, &spec) != nil || spec.ID != fmt.Sprintf("e%d", i) ||
			spec.Labels["guest"] != guest || string(spec.Config) != `{"rate":5}` || spec.Retention.Persist ||
			hdr.Get("Location") != "/api/v1/emitters/"+spec.ID {
			t.Fatalf("create %d: %d %s", i, code, resp)
		}
	}
	type list struct {
		Items []struct{ ID string }
		Next  string
	}
	get := func(q string) list {
		code, _, body := e.do("GET", "/api/v1/emitters"+q, "")
		var l list
		if code != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("list %s: %d %s", q, code, body)
		}
		return l
	}
	ids := func(l list) string {
		var s []string
		for _, it := range l.Items {
			s = append(s, it.ID)
		}
		return strings.Join(s, ",")
	}
	if l := get("?label=guest:vm-17"); ids(l) != "e0,e2" || l.Next != "" {
		t.Fatalf("label filter: %s next %q", ids(l), l.Next)
	}
	if l := get("?kind=log&label=guest:vm-17&label=guest:vm-18"); ids(l) != "" {
		t.Fatalf("contradicting labels: %s", ids(l))
	}
	if l := get("?kind=magic"); ids(l) != "" {
		t.Fatalf("kind filter: %s", ids(l))
	}
	l := get("?limit=2")
	all := ids(l)
	for i := 0; i < 10 && l.Next != ""; i++ {
		l = get("?limit=2&after=" + l.Next)
		all += "," + ids(l)
	}
	if all != "magic,time,fib,e0,e1,e2" {
		t.Fatalf("paging: %s", all)
	}
	if code, _, body := e.do("GET", "/api/v1/emitters/e1", ""); code != 200 || !strings.Contains(string(body), `"id":"e1"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, _, body := e.do("POST", "/api/v1/emitters/fib/commands/next", `{}`); code != 200 || string(body) != `{"position":1,"value":"1"}` {
		t.Fatalf("command: %d %s", code, body)
	}
	// The built-in emitters behind the shared routes are listed as shared
	// and refused on DELETE (the routes would fail until a restart).
	if code, _, body := e.do("GET", "/api/v1/emitters/magic", ""); code != 200 || !strings.Contains(string(body), `"shared":true`) {
		t.Fatalf("get magic: %d %s", code, body)
	}
	if code, _, body := e.do("GET", "/api/v1/emitters/e1", ""); strings.Contains(string(body), `"shared"`) {
		t.Fatalf("e1 listed as shared: %d %s", code, body)
	}
	for _, id := range []string{"magic", "time", "fib"} {
		if code, _, body := e.do("DELETE", "/api/v1/emitters/"+id, ""); code != 409 || !strings.Contains(string(body), `"code":"shared_emitter"`) {
			t.Fatalf("delete shared %s: %d %s", id, code, body)
		}
		if code, _, _ := e.do("GET", "/api/v1/emitters/"+id, ""); code != 200 {
			t.Fatalf("shared %s gone after a refused delete: %d", id, code)
		}
	}
	if code, _, body := e.do("GET", "/api/v1/whoami", ""); code != 200 || string(body) != `{"auth":false}` {
		t.Fatalf("whoami without auth: %d %s", code, body)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/emitters/e1", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := e.do("GET", "/api/v1/emitters/e1", ""); code != 404 {
		t.Fatalf("get after delete: %d", code)
	}
	code, _, body := e.do("GET", "/api/v1/plugins", "")
	if code != 200 || string(body) != `{"items":[{"name":"log","version":"1.0.0","pid":42,"state":"running","restarts":0,"instances":1}]}` {
		t.Fatalf("plugins: %d %s", code, body)
	}
}

func TestStreamEventsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"h"}`)
	e.publish("h", 7)
	var p struct {
		Events     []api.Event
		Next, Head uint64
	}
	var seqs []uint64
	after := uint64(0)
	for i := 0; i < 10; i++ {
		code, _, body := e.do("GET", fmt.Sprintf("/api/v1/streams/h/events?after=%d&limit=3", after), "")
		if code != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("page: %d %s", code, body)
		}
		if len(p.Events) == 0 {
			break
		}
		for _, ev := range p.Events {
			seqs = append(seqs, ev.Seq)
		}
		after = p.Next
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 5 6 7]" || p.Head != 7 || p.Next != 7 {
		t.Fatalf("seqs %v head %d next %d", seqs, p.Head, p.Next)
	}
}

func TestReadyzAndStatic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if code, _, body := e.do("GET", "/readyz", ""); code != 200 || string(body) != `{"status":"ready"}` {
		t.Fatalf("readyz: %d %s", code, body)
	}
	code, hdr, body := e.do("GET", "/openapi.yaml", "")
	if code != 200 || hdr.Get("Content-Type") != "application/yaml" || !strings.HasPrefix(string(body), "openapi: 3.1") {
		t.Fatalf("openapi: %d %s", code, body[:min(len(body), 40)])
	}
	code, hdr, body = e.do("GET", "/livedoc", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "livedoc") {
		t.Fatalf("livedoc: %d %s", code, body)
	}
}
