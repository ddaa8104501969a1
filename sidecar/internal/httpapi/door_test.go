package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"

	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
)

// Requests refused at the door, before any route runs, get a 4xx with
// the one error body: dot segments (encoded or not) that the router would
// clean into another route or a redirect, and bodies that are not UTF-8,
// on the API's routes and the queue routes alike.
func TestDoorRefusesBadPathsAndBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	const q = "X-Project-Id: p1\r\nClient-ID: 3f1e9a3c-1111-4111-8111-111111111111\r\n"
	tests := []struct {
		name, raw string
		code      string
	}{
		{"encoded dot segment in a message id", "GET /v2/queues/q1/messages/..%2f HTTP/1.1\r\nHost: x\r\n" + q + "\r\n", "invalid_path"},
		{"encoded dot segments reaching another route", "GET /v2/queues/q1/messages/..%2F..%2Fq2 HTTP/1.1\r\nHost: x\r\n" + q + "\r\n", "invalid_path"},
		{"plain dot segment", "GET /api/v1/emitters/../plugins HTTP/1.1\r\nHost: x\r\n\r\n", "invalid_path"},
		{"encoded dots", "GET /track/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", "invalid_path"},
		{"tracker publish not UTF-8", post("/track/alice", "", "\"\xff\xfe\""), "invalid_utf8"},
		{"emitter create not UTF-8", post("/api/v1/emitters", "", `{"kind":"log","labels":{"a":"`+"\xc3"+`"}}`), "invalid_utf8"},
		{"queue post not UTF-8", post("/v2/queues/q1/messages", q, `{"messages":[{"ttl":60,"body":"`+"\xff"+`"}]}`), "invalid_utf8"},
		{"queue post with a surrogate", post("/v2/queues/q1/messages", q, `{"messages":[{"ttl":60,"body":{"k":"`+"\xed\xa0\x80"+`"}}]}`), "invalid_utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := rawAnswers(t, e, tt.raw, 1)[0]
			if resp.StatusCode != http.StatusBadRequest {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d %q, want 400", resp.StatusCode, b)
			}
			if eb := errorBody(t, resp); eb.Error.Code != tt.code {
				t.Fatalf("code %q, want %q", eb.Error.Code, tt.code)
			}
		})
	}
	// Nothing refused reached the tracker: alice's first event is seq 1.
	if code, _, body := e.do("POST", "/track/alice", `"ok"`); code != http.StatusAccepted || string(body) != `{"seq":1}` {
		t.Fatalf("publish after the refusals: %d %s, want seq 1", code, body)
	}
	// Dots inside a segment are names, not segments.
	if code, _, body := e.do("POST", "/track/a.b..c", `{"ok":true}`); code != http.StatusAccepted {
		t.Fatalf("publish to a.b..c: %d %s", code, body)
	}
}

// post is a raw POST of a JSON body with extra header lines.
func post(path, headers, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + headers + "Content-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Writes beyond a client's rate are answered 429 with Retry-After and the
// error body; reads are not limited, and each bearer token (else address)
// has its own allowance.
func TestWriteRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnvDeps(t, Options{}, slog.New(slog.DiscardHandler), func(d *Deps) { d.Writes = ratelimit.New(0.01, 2) })
	write := func(token string) (int, http.Header, []byte) {
		if token == "" {
			return e.do("POST", "/track/u", `1`)
		}
		return e.do("POST", "/track/u", `1`, "Authorization", "Bearer "+token)
	}
	for i := range 2 {
		if code, _, body := write(""); code != http.StatusAccepted {
			t.Fatalf("write %d within the burst: %d %s", i, code, body)
		}
	}
	code, h, body := write("")
	if code != http.StatusTooManyRequests {
		t.Fatalf("write beyond the burst: %d %s, want 429", code, body)
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q, want whole seconds", h.Get("Retry-After"))
	}
	resp := &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(body))}
	if eb := errorBody(t, resp); eb.Error.Code != "rate_limited" {
		t.Fatalf("code %q", eb.Error.Code)
	}
	if code, _, _ := e.do("GET", "/fib/next", ""); code != http.StatusTooManyRequests {
		t.Fatalf("GET /fib/next (a write) from the same client: %d, want 429", code)
	}
	for range 3 {
		if code, _, _ := e.do("GET", "/fib/current", ""); code != http.StatusOK {
			t.Fatalf("a read was limited: %d", code)
		}
	}
	if code, _, body := write("other-token"); code != http.StatusAccepted {
		t.Fatalf("another client's write: %d %s", code, body)
	}
}

func TestIsWrite(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/v1/emitters", true},
		{"DELETE", "/v2/queues/q", true},
		{"PATCH", "/v2/queues/q", true},
		{"GET", "/track/alice", true},
		{"GET", "/fib/next", true},
		{"GET", "/fib/current", false},
		{"GET", "/sse/track/alice", false},
		{"GET", "/api/v1/emitters", false},
		{"HEAD", "/track/alice", false},
	} {
		if got := isWrite(tt.method, tt.path); got != tt.want {
			t.Errorf("isWrite(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}
