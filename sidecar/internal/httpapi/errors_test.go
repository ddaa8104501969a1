package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

func TestErrorCases(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxBodyBytes: 1024})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"taken"}`)
	big := `{"source":"` + strings.Repeat("a", 2000) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string
		allow                    string
	}{
		{"unknown route", "GET", "/nope", "", 404, "not_found", "", ""},
		{"unknown emitter page", "GET", "/log/missing", "", 404, "not_found", "", ""},
		{"unknown emitter sse", "GET", "/sse/log/missing", "", 404, "not_found", "", ""},
		{"unknown emitter get", "GET", "/api/v1/emitters/missing", "", 404, "not_found", "", ""},
		{"unknown emitter delete", "DELETE", "/api/v1/emitters/missing", "", 404, "not_found", "", ""},
		{"unknown stream", "GET", "/api/v1/streams/missing/events", "", 404, "not_found", "", ""},
		{"unknown field", "PUT", "/log", `{"source":"synthetic","bogus":1}`, 400, "unknown_field", "bogus", ""},
		{"wrong type", "PUT", "/log", `{"rate":"fast"}`, 400, "invalid_type", "rate", ""},
		{"wrong nested type", "PUT", "/log", `{"retention":{"max_events":"many"}}`, 400, "invalid_type", "retention.max_events", ""},
		{"bad duration", "PUT", "/log", `{"retention":{"max_age":"forever"}}`, 400, "invalid", "retention.max_age", ""},
		{"malformed", "PUT", "/log", `{"rate":`, 400, "malformed_json", "", ""},
		{"trailing", "PUT", "/log", `{} {}`, 400, "malformed_json", "", ""},
		{"not an object", "PUT", "/log", `[1]`, 400, "invalid_type", "(body)", ""},
		{"plugin validation", "PUT", "/log", `{"rate":0}`, 400, "invalid", "rate", ""},
		{"too large", "PUT", "/log", big, 413, "too_large", "", ""},
		{"unknown kind", "POST", "/api/v1/emitters", `{"kind":"nope"}`, 400, "unknown_kind", "", ""},
		{"kind missing", "POST", "/api/v1/emitters", `{"config":{}}`, 400, "invalid", "kind", ""},
		{"empty create", "POST", "/api/v1/emitters", ``, 400, "malformed_json", "", ""},
		{"labels wrong type", "POST", "/api/v1/emitters", `{"kind":"log","labels":{"a":1}}`, 400, "invalid_type", "labels", ""},
		{"exists", "POST", "/api/v1/emitters", `{"kind":"log","id":"taken"}`, 409, "exists", "", ""},
		{"unknown command", "POST", "/api/v1/emitters/fib/commands/launch", "", 404, "unknown_command", "", ""},
		{"command error", "POST", "/api/v1/emitters/fib/commands/fail", `{"n":1}`, 400, "bad_args", "", ""},
		{"command args malformed", "POST", "/api/v1/emitters/fib/commands/next", `{`, 400, "malformed_json", "", ""},
		{"unavailable", "POST", "/api/v1/emitters/fib/commands/down", "", 503, "unavailable", "", ""},
		{"panic", "POST", "/api/v1/emitters/fib/commands/panic", "", 500, "internal", "", ""},
		{"bad limit", "GET", "/log/taken?limit=0", "", 400, "invalid_query", "limit", ""},
		{"limit too big", "GET", "/api/v1/emitters?limit=5000", "", 400, "invalid_query", "limit", ""},
		{"bad before", "GET", "/log/taken?before=x", "", 400, "invalid_query", "before", ""},
		{"bad label", "GET", "/api/v1/emitters?label=guest", "", 400, "invalid_query", "label", ""},
		{"bad user", "GET", "/track/no%20spaces?data=1", "", 400, "invalid_user", "", ""},
		{"data missing", "GET", "/track/bob", "", 400, "invalid", "data", ""},
		{"track body malformed", "POST", "/track/bob", `{"a":`, 400, "malformed_json", "", ""},
		{"method on /log", "DELETE", "/log", "", 405, "method_not_allowed", "", "PUT"},
		{"method on /log/{id}", "POST", "/log/taken", "", 405, "method_not_allowed", "", "GET"},
		{"method on emitter", "PUT", "/api/v1/emitters/taken", "", 405, "method_not_allowed", "", "GET, DELETE"},
		{"method on fib", "DELETE", "/fib/next", "", 405, "method_not_allowed", "", "GET, POST"},
		{"method on healthz", "POST", "/healthz", "", 405, "method_not_allowed", "", "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := e.do(tc.method, tc.path, tc.body, "Content-Type", "application/json")
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.allow != "" && hdr.Get("Allow") != tc.allow {
				t.Fatalf("Allow %q, want %q", hdr.Get("Allow"), tc.allow)
			}
			if tc.code == "" {
				return
			}
			var eb api.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if eb.Error.Code != tc.code || eb.Error.Message == "" {
				t.Fatalf("error %+v, want code %s", eb.Error, tc.code)
			}
			if tc.field != "" {
				var names []string
				for _, f := range eb.Error.Fields {
					names = append(names, f.Field)
				}
				if !strings.Contains(strings.Join(names, ","), tc.field) {
					t.Fatalf("fields %v do not name %q (%s)", names, tc.field, body)
				}
			}
		})
	}
}

// A body past Hertz's own limit is refused from its Content-Length, before
// it is read. The request goes over a raw socket and sends no body: a
// client still writing a large body when the server closes may see its
// write fail before it reads the 413, which is not what this checks.
func TestBodyTooLargeForHertz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxBodyBytes: 1024})
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "PUT /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 100010)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}
