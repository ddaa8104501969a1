package httpapi

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/internal/crosssite"
)

// wsStatus sends a WebSocket handshake for path with origin and returns
// the answer's status.
func (e *env) wsStatus(path, origin string) int {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.base, "http://"), 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(e.base, "http://") + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode
}

func (e *env) send(method, path, host string, hdr ...string) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(`{"kind":"log","config":{"rate":1}}`))
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, resp.Header, string(buf[:n])
}

// TestCrossSite: on a loopback node without auth, a page of another site
// can neither drive the API through DNS rebinding (Host) nor change state
// or open a WebSocket (Origin, Sec-Fetch-Site), while same-origin and
// non-browser clients and the allowlisted origins (CORS, preflight,
// "null") work.
func TestCrossSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{CrossSite: crosssite.Policy{
		Origins: []string{"http://app.example:8080", "null"},
		Hosts:   crosssite.LoopbackHosts(),
	}})
	self := e.base
	port := self[strings.LastIndex(self, ":"):]
	const app = "http://app.example:8080"
	tests := []struct {
		name, method, path, host string
		hdr                      []string
		status                   int
		code                     string
		acao                     string
	}{
		{"rebinding host", "GET", "/api/v1/emitters", "evil.example" + port, nil, 403, "forbidden_host", ""},
		{"localhost", "GET", "/healthz", "localhost" + port, nil, 200, "", ""},
		{"ipv6 loopback", "GET", "/healthz", "[::1]" + port, nil, 200, "", ""},
		{"plain client", "POST", "/api/v1/emitters", "", nil, 201, "", ""},
		{"text/plain post from a site", "POST", "/api/v1/emitters", "", []string{"Origin", "http://evil.example", "Content-Type", "text/plain"}, 403, "forbidden_origin", ""},
		{"delete from a site", "DELETE", "/api/v1/emitters/magic", "", []string{"Origin", "http://evil.example"}, 403, "forbidden_origin", ""},
		{"GET that writes from a site", "GET", "/fib/next", "", []string{"Origin", "http://evil.example"}, 403, "forbidden_origin", ""},
		{"img from a site", "GET", "/track/alice?data=1", "", []string{"Sec-Fetch-Site", "cross-site"}, 403, "forbidden_origin", ""},
		{"read from a site", "GET", "/fib/current", "", []string{"Origin", "http://evil.example"}, 200, "", ""},
		{"same origin", "POST", "/fib/next", "", []string{"Origin", self}, 200, "", ""},
		{"allowlisted", "POST", "/api/v1/emitters", "", []string{"Origin", app}, 201, "", app},
		{"allowlisted null", "POST", "/fib/next", "", []string{"Origin", "null"}, 200, "", "null"},
		{"preflight", "OPTIONS", "/api/v1/emitters", "", []string{"Origin", app, "Access-Control-Request-Method", "POST"}, 204, "", app},
		{"preflight from a site", "OPTIONS", "/api/v1/emitters", "", []string{"Origin", "http://evil.example", "Access-Control-Request-Method", "POST"}, 403, "forbidden_origin", ""},
	}
	for _, tc := range tests {
		st, h, body := e.send(tc.method, tc.path, tc.host, tc.hdr...)
		if st != tc.status || (tc.code != "" && !strings.Contains(body, `"`+tc.code+`"`)) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != tc.acao {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", tc.name, got, tc.acao)
		}
		if tc.name == "preflight" && !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight allows headers %q", h.Get("Access-Control-Allow-Headers"))
		}
	}
	for origin, want := range map[string]int{"": 101, self: 101, app: 101, "null": 101, "http://evil.example": 403} {
		if st := e.wsStatus("/echo", origin); st != want {
			t.Errorf("WebSocket with Origin %q: %d, want %d", origin, st, want)
		}
	}
	if st := e.wsStatus("/v2/ws", "http://evil.example"); st != 403 {
		t.Errorf("queue WebSocket from a site: %d, want 403", st)
	}
}

// TestCrossSiteDefault: with nothing configured, "null" (a page opened
// from disk) is refused like any other origin.
func TestCrossSiteDefault(t *testing.T) {
	t.Parallel()
	e := newEnvLog(t, Options{}, slog.New(slog.DiscardHandler))
	if st := e.wsStatus("/echo", "null"); st != 403 {
		t.Errorf("WebSocket from a file page: %d, want 403", st)
	}
	if st, h, body := e.send("OPTIONS", "/fib/next", "", "Origin", "null", "Access-Control-Request-Method", "POST"); st != 403 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from a file page: %d %s", st, body)
	}
}
