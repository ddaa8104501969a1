package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

// TestRESTCalls checks each typed call's request (method, path, query,
// body, headers) and the decoding of its answer.
func TestRESTCalls(t *testing.T) {
	t.Parallel()
	type seen struct{ method, uri, body, auth, ua string }
	var got seen
	answers := map[string]string{
		"/api/v1/emitters":                  `{"id":"e1","kind":"log","config":{"rate":5},"labels":{"guest":"vm-17"},"retention":{"persist":true,"max_events":10,"max_age":"1h0m0s"},"created_at":"2026-01-02T03:04:05Z"}`,
		"/api/v1/emitters/a%2Fb":            `{"id":"a/b","kind":"magic"}`,
		"/api/v1/emitters/e1/commands/next": `{"position":1,"value":"1"}`,
		"/api/v1/streams/track:u/events":    `{"events":[{"stream":"track:u","seq":4,"type":"track","time":"2026-01-02T03:04:05Z","data":"hi"}],"next":4,"head":9}`,
		"/api/v1/plugins":                   `{"items":[{"name":"log","version":"1","pid":42,"state":"running","restarts":0,"instances":2}]}`,
		"/log":                              `{"id":"em-1"}`,
		"/fib/next":                         `{"position":100,"value":"354224848179261915075"}`,
		"/track/u":                          `{"seq":7}`,
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.RequestURI, string(b), r.Header.Get("Authorization"), r.Header.Get("User-Agent")}
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path == "/api/v1/emitters" && r.Method == http.MethodGet {
			fmt.Fprint(w, `{"items":[{"id":"e1","kind":"log"}],"next":"e1"}`)
			return
		}
		fmt.Fprint(w, answers[r.URL.EscapedPath()])
	}))
	defer ts.Close()
	c, err := New(ts.URL+"/", WithToken("tok"), WithUserAgent("ua/1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	persist := &api.RetentionRequest{Persist: ptr(true), MaxEvents: ptr(10)}
	tests := []struct {
		name           string
		call           func() (any, error)
		method, uri    string
		body, wantJSON string
	}{
		{"create emitter", func() (any, error) {
			return c.CreateEmitter(ctx, api.CreateEmitter{Kind: "log", Config: json.RawMessage(`{"rate":5}`), Labels: map[string]string{"guest": "vm-17"}, Retention: persist})
		}, "POST", "/api/v1/emitters", `{"kind":"log","config":{"rate":5},"labels":{"guest":"vm-17"},"retention":{"persist":true,"max_events":10}}`,
			`{"id":"e1","kind":"log","config":{"rate":5},"labels":{"guest":"vm-17"},"retention":{"persist":true,"max_events":10,"max_age":"1h0m0s"},"created_at":"2026-01-02T03:04:05Z"}`},
		{"list emitters", func() (any, error) {
			return c.ListEmitters(ctx, ListEmitters{Kind: "log", Labels: map[string]string{"guest": "vm-17"}, After: "e0", Limit: 5})
		}, "GET", "/api/v1/emitters?after=e0&kind=log&label=guest%3Avm-17&limit=5", "", `{"items":[{"id":"e1","kind":"log","config":null,"retention":{"persist":false},"created_at":"0001-01-01T00:00:00Z"}],"next":"e1"}`},
		{"get emitter escapes the id", func() (any, error) { return c.GetEmitter(ctx, "a/b") }, "GET", "/api/v1/emitters/a%2Fb", "",
			`{"id":"a/b","kind":"magic","config":null,"retention":{"persist":false},"created_at":"0001-01-01T00:00:00Z"}`},
		{"delete emitter", func() (any, error) { return nil, c.DeleteEmitter(ctx, "e1") }, "DELETE", "/api/v1/emitters/e1", "", `null`},
		{"command", func() (any, error) { return c.Command(ctx, "e1", "next", map[string]int{"n": 1}) }, "POST", "/api/v1/emitters/e1/commands/next", `{"n":1}`, `{"position":1,"value":"1"}`},
		{"events", func() (any, error) { return c.Events(ctx, "track:u", 3, 2) }, "GET", "/api/v1/streams/track:u/events?after=3&limit=2", "",
			`{"events":[{"stream":"track:u","seq":4,"type":"track","time":"2026-01-02T03:04:05Z","data":"hi"}],"next":4,"head":9}`},
		{"events matching a filter", func() (any, error) { return c.EventsMatching(ctx, "track:u", 3, 2, `data.n > 1 && type == "track"`) },
			"GET", "/api/v1/streams/track:u/events?after=3&filter=data.n+%3E+1+%26%26+type+%3D%3D+%22track%22&limit=2", "",
			`{"events":[{"stream":"track:u","seq":4,"type":"track","time":"2026-01-02T03:04:05Z","data":"hi"}],"next":4,"head":9}`},
		{"plugins", func() (any, error) { return c.Plugins(ctx) }, "GET", "/api/v1/plugins", "", `[{"name":"log","version":"1","pid":42,"state":"running","restarts":0,"instances":2}]`},
		{"create log", func() (any, error) { return c.CreateLog(ctx, api.LogRequest{Rate: ptr(100.0)}) }, "PUT", "/log", `{"rate":100}`, `"em-1"`},
		{"fib", func() (any, error) { return c.Fib(ctx, "next") }, "POST", "/fib/next", "", `{"position":100,"value":"354224848179261915075"}`},
		{"track", func() (any, error) { return c.Track(ctx, "u", map[string]string{"x": "y"}) }, "POST", "/track/u", `{"x":"y"}`, `7`},
	}
	for _, tt := range tests { // sequential: they share got
		out, err := tt.call()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got.method != tt.method || got.uri != tt.uri || got.body != tt.body || got.auth != "Bearer tok" || got.ua != "ua/1" {
			t.Fatalf("%s: request %+v, want %s %s body %s", tt.name, got, tt.method, tt.uri, tt.body)
		}
		if b, _ := json.Marshal(out); string(b) != tt.wantJSON {
			t.Fatalf("%s: answer %s, want %s", tt.name, b, tt.wantJSON)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/emitters":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"unknown_field","message":"unknown field \"x\"","fields":[{"field":"x","message":"unknown field"}]}}`)
		case "/api/v1/plugins":
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>proxy says no</html>")
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"emitter \"e9\": emitter not found"}}`)
		}
	}))
	defer ts.Close()
	c, _ := New(ts.URL)
	ctx := context.Background()
	_, err := c.CreateEmitter(ctx, api.CreateEmitter{Kind: "log"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "unknown_field" || len(ae.Fields) != 1 || ae.Fields[0].Field != "x" || ae.Temporary() {
		t.Fatalf("400: %#v", err)
	}
	if _, err := c.GetEmitter(ctx, "e9"); !IsNotFound(err) || err.Error() != `server answered 404 not_found: emitter "e9": emitter not found` {
		t.Fatalf("404: %v", err)
	}
	if _, err := c.Plugins(ctx); !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "<html>proxy says no</html>" || !ae.Temporary() {
		t.Fatalf("502: %#v", err)
	}
	for _, bad := range []string{"", "127.0.0.1:9000", "ftp://h", "http://"} {
		if _, err := New(bad); err == nil {
			t.Fatalf("New(%q): no error", bad)
		}
	}
}

func ptr[T any](v T) *T { return &v }
