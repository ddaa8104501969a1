package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hertz-contrib/websocket"
)

// Every public route of the earlier systems and of /api/v1 answers on the
// real binary with the shape its users rely on.
func TestEveryRouteOnTheBinary(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())

	t.Run("system", func(t *testing.T) {
		resp, err := noRedirect.Get(sc.URL("/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/livedoc" {
			t.Fatalf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`, "/openapi.yaml": "openapi: 3.1", "/metrics": "# HELP", "/livedoc": "<html"} {
			if code, body := get(t, sc.URL(path)); code != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("GET %s: %d, body lacks %q", path, code, want)
			}
		}
		var kinds struct{ Items []struct{ Name string } }
		if do(t, http.MethodGet, sc.URL("/api/v1/kinds"), "", &kinds); len(kinds.Items) < 4 {
			t.Errorf("/api/v1/kinds lists %d kinds, want the 4 built-ins", len(kinds.Items))
		}
	})

	t.Run("shared streams", func(t *testing.T) {
		// The default type by default (EventSource.onmessage), the type
		// named when asked for.
		for path, typ := range map[string]string{"/magic": "", "/time": "", "/magic?event_types=1": "magic", "/time?event_types=true": "time"} {
			ev, err := openSSE(t, sc.URL(path), "").Next()
			if err != nil || ev.Event != typ || ev.ID == 0 {
				t.Errorf("GET %s: %+v %v", path, ev, err)
			}
		}
		fib := openSSE(t, sc.URL("/sse/fib"), "")
		var r struct{ Position int }
		do(t, http.MethodPost, sc.URL("/fib/reset"), "", nil)
		do(t, http.MethodPost, sc.URL("/fib/next"), "", &r)
		for {
			ev, err := fib.Next()
			if err != nil {
				t.Fatal(err)
			}
			var d struct{ Position int }
			ev.decode(t, &d)
			if ev.Event == "" && d.Position == r.Position && r.Position == 1 {
				break
			}
		}
		if code, body := get(t, sc.URL("/fib")); code != http.StatusOK || !strings.Contains(body, "/fib/next") {
			t.Errorf("GET /fib: %d %s", code, body)
		}
		var p struct {
			Position int
			Value    string
		}
		if do(t, http.MethodGet, sc.URL("/fib/previous"), "", &p); p.Position != 0 || p.Value != "0" {
			t.Errorf("previous from 1: %+v", p)
		}
		if do(t, http.MethodGet, sc.URL("/fib/previous"), "", &p); p.Position != 0 {
			t.Errorf("previous at 0 must stay at 0: %+v", p)
		}
	})

	t.Run("tracker", func(t *testing.T) {
		var a, b struct{ Seq uint64 }
		if code := do(t, http.MethodGet, sc.URL("/track/alice?data=hello"), "", &a); code != http.StatusAccepted || a.Seq == 0 {
			t.Fatalf("GET /track: %d %+v", code, a)
		}
		if code := do(t, http.MethodPost, sc.URL("/track/alice"), `{"x":1}`, &b); code != http.StatusAccepted || b.Seq != a.Seq+1 {
			t.Fatalf("POST /track: %d %+v after %d", code, b, a.Seq)
		}
		sse := openSSE(t, sc.URL(fmt.Sprintf("/sse/track/alice?after=%d", a.Seq-1)), "")
		for _, want := range []string{`"hello"`, `{"x":1}`} {
			if ev, err := sse.Next(); err != nil || ev.Data != want {
				t.Fatalf("SSE track: %+v %v, want data %s", ev, err, want)
			}
		}
		ws := dialWS(t, sc.URL(fmt.Sprintf("/ws/track/alice?after=%d", a.Seq-1)))
		for _, want := range []uint64{a.Seq, b.Seq} {
			var env struct {
				Stream string
				Seq    uint64
			}
			readEnvelope(t, ws, &env)
			if env.Seq != want || env.Stream != "track:alice" {
				t.Fatalf("WS track: %+v, want seq %d", env, want)
			}
		}
	})

	t.Run("emitters", func(t *testing.T) { checkEmitterAPI(t, sc) })

	t.Run("echo", func(t *testing.T) {
		ws := dialWS(t, sc.URL("/echo"))
		if err := ws.WriteMessage(websocket.TextMessage, []byte("ping?")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "ping?" {
			t.Fatalf("echo: %q %v", msg, err)
		}
	})
}

func checkEmitterAPI(t *testing.T, sc *sidecar) {
	var m, tm struct{ ID string }
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"magic","config":{"rate":50},"labels":{"guest":"vm-1"}}`, &m); code != http.StatusCreated {
		t.Fatalf("create magic: %d", code)
	}
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"time","config":{"interval":"50ms"},"labels":{"guest":"vm-2"}}`, &tm); code != http.StatusCreated {
		t.Fatalf("create time: %d", code)
	}
	type page struct {
		Items []struct{ ID, Kind string }
		Next  string
	}
	var byKind, byLabel, first, second page
	do(t, http.MethodGet, sc.URL("/api/v1/emitters?kind=magic"), "", &byKind)
	do(t, http.MethodGet, sc.URL("/api/v1/emitters?label=guest:vm-2"), "", &byLabel)
	if !hasOnly(byKind.Items, "magic") || len(byLabel.Items) != 1 || byLabel.Items[0].ID != tm.ID {
		t.Fatalf("filters: kind=magic %+v, label=guest:vm-2 %+v", byKind, byLabel)
	}
	do(t, http.MethodGet, sc.URL("/api/v1/emitters?limit=1"), "", &first)
	do(t, http.MethodGet, sc.URL("/api/v1/emitters?limit=1&after="+first.Next), "", &second)
	if len(first.Items) != 1 || first.Next == "" || len(second.Items) != 1 || second.Items[0].ID == first.Items[0].ID {
		t.Fatalf("paging: %+v then %+v", first, second)
	}
	var got struct{ ID, Kind string }
	if code := do(t, http.MethodGet, sc.URL("/api/v1/emitters/"+m.ID), "", &got); code != http.StatusOK || got.Kind != "magic" {
		t.Fatalf("get: %d %+v", code, got)
	}
	var cmd struct{ Position int }
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters/fib/commands/current"), "", &cmd); code != http.StatusOK {
		t.Fatalf("command: %d", code)
	}
	ws := dialWS(t, sc.URL("/api/v1/streams/"+tm.ID+"/ws"))
	var env struct {
		Stream, Type string
		Seq          uint64
	}
	readEnvelope(t, ws, &env)
	if env.Stream != tm.ID || env.Type != "time" || env.Seq == 0 {
		t.Fatalf("stream WS: %+v", env)
	}
	var hist struct {
		Events []struct{ Seq uint64 }
	}
	eventually(t, "history of the time emitter", 30*time.Second, func() bool {
		return do(t, http.MethodGet, sc.URL("/api/v1/streams/"+tm.ID+"/events?after=0&limit=3"), "", &hist) == http.StatusOK && len(hist.Events) == 3
	})
	if hist.Events[0].Seq != 1 || hist.Events[2].Seq != 3 {
		t.Fatalf("history page: %+v", hist)
	}
	if code := do(t, http.MethodDelete, sc.URL("/api/v1/emitters/"+m.ID), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code := do(t, http.MethodGet, sc.URL("/api/v1/emitters/"+m.ID), "", nil); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d", code)
	}
}

func hasOnly(items []struct{ ID, Kind string }, kind string) bool {
	for _, it := range items {
		if it.Kind != kind {
			return false
		}
	}
	return len(items) > 0
}

// Each kind of bad input gets its status and the one JSON error shape on
// the real binary; oversized WebSocket frames close with 1009.
func TestBadRequestsOnTheBinary(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	big := `{"kind":"magic","config":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
	cases := []struct {
		name, method, path, body, header string
		status                           int
		mention                          string
	}{
		{"malformed JSON", "POST", "/api/v1/emitters", `{"kind":`, "", 400, ""},
		{"unknown field", "POST", "/api/v1/emitters", `{"kind":"magic","colour":"red"}`, "", 400, "colour"},
		{"wrong type", "POST", "/api/v1/emitters", `{"kind":42}`, "", 400, "kind"},
		{"oversized body", "POST", "/api/v1/emitters", big, "", 413, ""},
		{"malformed Last-Event-ID", "GET", "/sse/log/magic", "", "Last-Event-ID: abc", 400, "Last-Event-ID"},
		{"malformed after", "GET", "/api/v1/streams/magic/sse?after=-1", "", "", 400, "after"},
		{"unknown emitter", "GET", "/api/v1/emitters/nope", "", "", 404, ""},
		{"unknown stream", "GET", "/api/v1/streams/nope/events", "", "", 404, ""},
		{"unknown route", "GET", "/no/such/route", "", "", 404, ""},
		{"unknown command", "POST", "/api/v1/emitters/fib/commands/jump", "", "", 404, ""},
		{"bad tracker user", "GET", "/track/" + strings.Repeat("u", 65) + "?data=x", "", "", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, sc.URL(tc.path), strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if k, v, ok := strings.Cut(tc.header, ": "); ok {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			var e apiErr
			if resp.StatusCode != tc.status || json.Unmarshal(raw, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: %d %s, want %d with a JSON error", tc.method, tc.path, resp.StatusCode, raw, tc.status)
			}
			if tc.mention != "" && !strings.Contains(string(raw), tc.mention) {
				t.Fatalf("error %s does not name %q", raw, tc.mention)
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, sc.URL("/log/x"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
			t.Fatalf("DELETE /log/x: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("oversized WebSocket frame", func(t *testing.T) {
		ws := dialWS(t, sc.URL("/echo"))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 1<<20))); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("oversized frame: %v, want close 1009", err)
		}
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(raw)
}
