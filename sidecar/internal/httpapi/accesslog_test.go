package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Every request gets an id, echoed in X-Request-Id, and its log line
// carries it; a caller's sane id is kept, a hostile one replaced.
func TestRequestIDOnEveryRequestLog(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	e := newEnvLog(t, Options{}, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cases := []struct {
		name, path, sent string
		status           int
		keep             bool
	}{
		{"caller's id kept", "/healthz", "req-42.a_b", 200, true},
		{"generated", "/healthz", "", 200, false},
		{"hostile id replaced", "/healthz", "bad id\" with spaces", 200, false},
		{"not found logged too", "/nope", "req-404", 404, true},
	}
	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, e.base+tc.path, nil)
		if tc.sent != "" {
			req.Header.Set(RequestIDHeader, tc.sent)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get(RequestIDHeader)
		if resp.StatusCode != tc.status || (tc.keep && id != tc.sent) || (!tc.keep && !generated.MatchString(id)) {
			t.Fatalf("%s: status %d, id %q", tc.name, resp.StatusCode, id)
		}
		found := false
		for _, l := range buf.lines() {
			if l["msg"] == "request" && l[requestIDKey] == id && l["status"] == float64(tc.status) {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no request log line with request_id %q", tc.name, id)
		}
	}
}
