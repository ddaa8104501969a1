package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// rawAnswers sends raw, written by hand, on a new connection and reads
// n answers.
func rawAnswers(t *testing.T, e *env, raw string, n int) []*http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	out := make([]*http.Response, n)
	for i := range out {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d to %.80q: %v", i, raw, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out[i] = resp
	}
	return out
}

// errorBody reads resp as the one error body, strictly.
func errorBody(t *testing.T, resp *http.Response) api.ErrorBody {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != jsonContentType {
		t.Fatalf("%d answer: Content-Type %q, want JSON; body %q", resp.StatusCode, ct, b)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var eb api.ErrorBody
	if err := dec.Decode(&eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("%d answer %q is not the error body (%v)", resp.StatusCode, b, err)
	}
	return eb
}

// Requests the server cannot route, or that Hertz refuses before any
// handler or middleware runs, get the same JSON error body as handler
// errors, with the right status.
func TestEarlyErrorsHaveTheErrorBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxBodyBytes: 1024, MaxHeaderBytes: 4096})
	big := strings.Repeat("a", 8000)
	tests := []struct {
		name, raw string
		status    int
		code      string
		header    [2]string // a header the answer must carry
	}{
		{"headers too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", 431, "headers_too_large", [2]string{}},
		{"bad Content-Length", "PUT /log HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "bad_request", [2]string{}},
		{"negative Content-Length", "PUT /log HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, "bad_request", [2]string{}},
		{"bad request line", "GET\r\n\r\n", 400, "bad_request", [2]string{}},
		{"body beyond Hertz's limit", "PUT /log HTTP/1.1\r\nHost: x\r\nContent-Length: 100010\r\n\r\n", 413, "too_large", [2]string{}},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request", [2]string{}},
		{"no route", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found", [2]string{}},
		{"no method", "DELETE /log HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed", [2]string{"Allow", "PUT"}},
		{"no method on a queue route", "PUT /v2/queues/q1/stats HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed", [2]string{"Allow", "GET"}},
		{"trailing slash, GET", "GET /api/v1/emitters/?limit=5 HTTP/1.1\r\nHost: x\r\n\r\n", 301, "redirect", [2]string{"Location", "/api/v1/emitters?limit=5"}},
		{"trailing slash, POST", "POST /api/v1/emitters/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 307, "redirect", [2]string{"Location", "/api/v1/emitters"}},
		{"missing slash on a queue route", "GET /v2/queues/ HTTP/1.1\r\nHost: x\r\n\r\n", 301, "redirect", [2]string{"Location", "/v2/queues"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := rawAnswers(t, e, tt.raw, 1)[0]
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d %q, want %d", resp.StatusCode, b, tt.status)
			}
			if eb := errorBody(t, resp); eb.Error.Code != tt.code {
				t.Fatalf("code %q, want %q", eb.Error.Code, tt.code)
			}
			if h := tt.header; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
				t.Fatalf("%s: %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
			}
		})
	}
}

// A bad request pipelined after a good one: the good one's answer is
// untouched, the bad one gets the error body.
func TestEarlyErrorAfterPipelinedAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rs := rawAnswers(t, e, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPUT /log HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 2)
	if b, _ := io.ReadAll(rs[0].Body); rs[0].StatusCode != 200 || string(b) != `{"status":"ok"}` {
		t.Fatalf("first answer %d %s", rs[0].StatusCode, b)
	}
	if rs[1].StatusCode != 400 || errorBody(t, rs[1]).Error.Code != "bad_request" {
		t.Fatalf("second answer %d", rs[1].StatusCode)
	}
}

// Answers that merely look like Hertz's early ones pass through as they
// are: only a whole text/plain answer of the exact message is rewritten.
func TestEarlyErrorRewriteIsExact(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"data: Error when parsing request",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\nError when parsing request",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 99\r\n\r\nError when parsing request",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 15\r\n\r\nRequest timeout",
	} {
		if out, ok := earlyErrorJSON([]byte(raw)); ok || string(out) != raw {
			t.Fatalf("%q rewritten to %q", raw, out)
		}
	}
}
