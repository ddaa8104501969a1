package e2e

// Bearer auth on the real binary: a token file of two tenants, HS256 JWTs
// from SIDESTREAM_AUTH_JWT_SECRET, and the listen guard. What a user
// relies on: protected routes refuse anonymous and wrong tokens with a
// JSON 401, the public ones (livedoc, OpenAPI, probes, metrics) do not,
// browsers' streams authenticate by access_token or cookie, and one
// tenant's token never reaches another tenant's queues.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hertz-contrib/websocket"
)

const (
	tokAlpha = "e2e-alpha-token-0123456789"
	tokBravo = "e2e-bravo-token-0123456789"
	tokWrong = "e2e-wrong-token-0123456789"
)

// writeTokenFile writes the two tenants' tokens (JSON: the file format
// accepts YAML too) and returns its path.
func writeTokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	body := `{"tokens":[
	  {"token":"` + tokAlpha + `","tenant":"alpha","subject":"alice","scopes":["*"]},
	  {"token":"` + tokBravo + `","tenant":"bravo","subject":"bob","scopes":["queues"]}
	]}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hdr is the headers of one request.
type hdr map[string]string

func bearer(tok string) hdr { return hdr{"Authorization": "Bearer " + tok} }

// with returns h plus more (h is not changed).
func (h hdr) with(more hdr) hdr {
	out := hdr{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// wantUnauthenticated checks the answer is the API's 401.
func wantUnauthenticated(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusUnauthorized || a.errorCode() != "unauthenticated" {
		t.Errorf("%s: %d %s, want 401 with error code unauthenticated", what, a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: 401 content type %q, want JSON", what, ct)
	}
	if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: 401 without a Bearer WWW-Authenticate challenge", what)
	}
}

// sseWith opens an event stream the way EventSource does (Accept:
// text/event-stream) with headers h. It returns the status and, on 200,
// the stream.
func sseWith(t *testing.T, url string, h hdr) (int, *sseStream) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return resp.StatusCode, nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	s := &sseStream{resp: resp, sc: sc, cancel: cancel}
	t.Cleanup(s.Close)
	return http.StatusOK, s
}

// startSidecarEnv is startSidecar with extra environment variables.
func startSidecarEnv(t *testing.T, dataDir string, env []string, extra ...string) *sidecar {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "debug"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "SIDESTREAM_CONFIG="), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &sidecar{t: t, cmd: cmd, dataDir: dataDir, args: args, done: make(chan struct{}), ready: make(chan string, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readLogs(stderr)
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("sidestream logs:\n%s", s.Logs())
		}
	})
	select {
	case s.addr = <-s.ready:
	case <-s.done:
		t.Fatalf("sidestream exited before serving; logs:\n%s", s.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("sidestream did not start within 60s; logs:\n%s", s.Logs())
	}
	return s
}

// TestAuthTokenFile: with a token file, every protected route refuses a
// missing or unknown token with the API's JSON 401 and serves a valid
// one; the public routes answer anyone; SSE and WebSocket streams take the
// token as access_token or as the sidestream_token cookie.
func TestAuthTokenFile(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir(), "--auth-token-file", writeTokenFile(t))

	var logEm struct{ ID string }
	if a := send(t, "PUT", sc.URL("/log"), `{"rate":50}`, bearer(tokAlpha)); a.status != http.StatusCreated {
		t.Fatalf("PUT /log with a valid token: %d %s", a.status, a.body)
	} else {
		a.decode(t, &logEm)
	}

	t.Run("REST", func(t *testing.T) {
		t.Parallel()
		routes := []struct{ method, path, body string }{
			{"GET", "/api/v1/emitters", ""},
			{"GET", "/api/v1/plugins", ""},
			{"GET", "/api/v1/emitters/" + logEm.ID, ""},
			{"PUT", "/log", `{"rate":1}`},
			{"GET", "/log/" + logEm.ID, ""},
			{"GET", "/fib/next", ""},
			{"POST", "/fib/next", ""},
			{"POST", "/api/v1/emitters/fib/commands/current", ""},
		}
		for _, r := range routes {
			what := r.method + " " + r.path
			wantUnauthenticated(t, what+" without a token", send(t, r.method, sc.URL(r.path), r.body, nil))
			wantUnauthenticated(t, what+" with an unknown token", send(t, r.method, sc.URL(r.path), r.body, bearer(tokWrong)))
			wantUnauthenticated(t, what+" with Basic credentials", send(t, r.method, sc.URL(r.path), r.body, hdr{"Authorization": "Basic " + tokAlpha}))
			for name, h := range map[string]hdr{"Bearer": bearer(tokAlpha), "X-Auth-Token": {"X-Auth-Token": tokAlpha}} {
				if a := send(t, r.method, sc.URL(r.path), r.body, h); a.status/100 != 2 {
					t.Errorf("%s with a valid token (%s): %d %s", what, name, a.status, a.body)
				}
			}
		}
		// A token in the URL is for browsers' streams only: a REST call
		// with it, or with the cookie, stays anonymous.
		wantUnauthenticated(t, "REST with access_token", send(t, "GET", sc.URL("/api/v1/emitters?access_token="+tokAlpha), "", nil))
		wantUnauthenticated(t, "REST with the cookie", send(t, "GET", sc.URL("/api/v1/emitters"), "", hdr{"Cookie": "sidestream_token=" + tokAlpha}))
		// Anonymous calls changed nothing: fib moved only by the
		// authenticated next calls (two per valid token kind).
		var cur struct{ Position int }
		send(t, "GET", sc.URL("/fib/current"), "", bearer(tokAlpha)).decode(t, &cur)
		if cur.Position != 4 {
			t.Errorf("fib at position %d after 4 authenticated next calls, want 4 (anonymous ones must not count)", cur.Position)
		}
	})

	t.Run("public routes", func(t *testing.T) {
		t.Parallel()
		for path, want := range map[string]int{
			"/": http.StatusFound, "/livedoc": 200, "/livedoc/app.js": 200, "/livedoc/api.js": 200,
			"/openapi.yaml": 200, "/openapi.json": 200, "/healthz": 200, "/readyz": 200,
		} {
			if a := send(t, "GET", sc.URL(path), "", nil); a.status != want {
				t.Errorf("GET %s without a token: %d, want %d", path, a.status, want)
			}
		}
		// A bad token does not turn a public route into a 401.
		if a := send(t, "GET", sc.URL("/healthz"), "", bearer(tokWrong)); a.status != 200 {
			t.Errorf("GET /healthz with a wrong token: %d %s", a.status, a.body)
		}
		// Metrics need metrics:read: bravo (queues only) is refused, a
		// scraper with the scope reads them.
		wantUnauthenticated(t, "GET /metrics without a token", send(t, "GET", sc.URL("/metrics"), "", nil))
		if a := send(t, "GET", sc.URL("/metrics"), "", bearer(tokBravo)); a.status != http.StatusForbidden || !strings.Contains(string(a.body), `"insufficient_scope"`) {
			t.Errorf("GET /metrics without metrics:read: %d %s, want 403", a.status, a.body)
		}
		if a := send(t, "GET", sc.URL("/metrics"), "", bearer(tokAlpha)); a.status != 200 || !strings.Contains(string(a.body), "# TYPE") {
			t.Errorf("GET /metrics with metrics:read: %d, body starts %.80q", a.status, a.body)
		}
	})

	t.Run("SSE", func(t *testing.T) {
		t.Parallel()
		url := sc.URL("/sse/log/" + logEm.ID)
		for name, c := range map[string]struct {
			url string
			h   hdr
		}{
			"access_token": {url + "?access_token=" + tokAlpha, nil},
			"cookie":       {url, hdr{"Cookie": "sidestream_token=" + tokAlpha}},
			"bearer":       {url, bearer(tokAlpha)},
		} {
			status, s := sseWith(t, c.url, c.h)
			if status != http.StatusOK {
				t.Fatalf("SSE with %s: %d, want 200", name, status)
			}
			if ev, err := s.Next(); err != nil || ev.Event != "" || ev.ID == 0 {
				t.Fatalf("SSE with %s: first event %+v %v, want an event on the default type", name, ev, err)
			}
			s.Close()
		}
		for name, c := range map[string]struct {
			url string
			h   hdr
		}{
			"no token":             {url, nil},
			"unknown access_token": {url + "?access_token=" + tokWrong, nil},
			"unknown cookie":       {url, hdr{"Cookie": "sidestream_token=" + tokWrong}},
		} {
			if status, _ := sseWith(t, c.url, c.h); status != http.StatusUnauthorized {
				t.Errorf("SSE with %s: %d, want 401", name, status)
			}
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		t.Parallel()
		url := sc.URL("/api/v1/streams/" + logEm.ID + "/ws")
		for name, c := range map[string]struct {
			url string
			h   hdr
		}{
			"access_token": {url + "?access_token=" + tokAlpha, nil},
			"cookie":       {url, hdr{"Cookie": "sidestream_token=" + tokAlpha}},
			"bearer":       {url, bearer(tokAlpha)},
		} {
			conn, status, body := tryWS(t, c.url, c.h)
			if conn == nil {
				t.Fatalf("stream WS with %s: refused %d %s", name, status, body)
			}
			var env struct {
				Stream, Type string
				Seq          uint64
			}
			readEnvelope(t, conn, &env)
			if env.Stream != logEm.ID || env.Type != "log" || env.Seq == 0 {
				t.Fatalf("stream WS with %s: %+v", name, env)
			}
			_ = conn.Close()
		}
		for name, c := range map[string]struct {
			url string
			h   hdr
		}{
			"no token":             {url, nil},
			"unknown access_token": {url + "?access_token=" + tokWrong, nil},
			"unknown cookie":       {url, hdr{"Cookie": "sidestream_token=" + tokWrong}},
			"echo without a token": {sc.URL("/echo"), nil},
		} {
			if conn, status, body := tryWS(t, c.url, c.h); conn != nil || status != http.StatusUnauthorized {
				t.Errorf("WS with %s: status %d %s, want a refused upgrade with 401", name, status, body)
			}
		}
		// The echo socket with a token in the URL, as livedoc opens it.
		conn, status, body := tryWS(t, sc.URL("/echo?access_token="+tokAlpha), nil)
		if conn == nil {
			t.Fatalf("echo with access_token: refused %d %s", status, body)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte("authed ping")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, msg, err := conn.ReadMessage(); err != nil || string(msg) != "authed ping" {
			t.Fatalf("echo: %q %v", msg, err)
		}
	})
}

// TestAuthJWT: an HS256 JWT signed with SIDESTREAM_AUTH_JWT_SECRET and
// carrying a tenant and exp is accepted (REST, queues as its tenant, SSE
// by access_token); an expired one, one signed with another key, one
// without exp or tenant, and an unsigned one are refused.
func TestAuthJWT(t *testing.T) {
	t.Parallel()
	secret := "e2e-jwt-secret-of-at-least-32-bytes!!"
	sc := startSidecarEnv(t, t.TempDir(), []string{"SIDESTREAM_AUTH_JWT_SECRET=" + secret})
	now := time.Now()
	sign := func(key string, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(secret, jwt.MapClaims{"sub": "carol", "tenant": "charlie", "scope": "queues streams:read", "exp": now.Add(time.Hour).Unix()})

	if a := send(t, "GET", sc.URL("/api/v1/emitters"), "", bearer(good)); a.status != http.StatusOK {
		t.Fatalf("GET /api/v1/emitters with a valid JWT: %d %s", a.status, a.body)
	}
	// The tenant claim is the queue tenant.
	if a := send(t, "PUT", sc.URL("/v2/queues/jwt-q"), "", bearer(good)); a.status != http.StatusCreated {
		t.Fatalf("create a queue with the JWT: %d %s", a.status, a.body)
	}
	if a := send(t, "GET", sc.URL("/v2/queues"), "", bearer(good).with(hdr{"X-Project-Id": "charlie"})); a.status != http.StatusOK || !strings.Contains(string(a.body), `"jwt-q"`) {
		t.Errorf("list charlie's queues with the JWT: %d %s", a.status, a.body)
	}
	if a := send(t, "GET", sc.URL("/v2/queues"), "", bearer(good).with(hdr{"X-Project-Id": "alpha"})); a.status != http.StatusForbidden {
		t.Errorf("list another tenant's queues with the JWT: %d %s, want 403", a.status, a.body)
	}
	if status, s := sseWith(t, sc.URL("/sse/fib?access_token="+good), nil); status != http.StatusOK {
		t.Errorf("SSE with the JWT as access_token: %d", status)
	} else {
		s.Close()
	}

	refused := map[string]string{
		"expired":         sign(secret, jwt.MapClaims{"tenant": "charlie", "exp": now.Add(-time.Hour).Unix()}),
		"another key":     sign("another-secret-of-at-least-32-bytes!!", jwt.MapClaims{"tenant": "charlie", "exp": now.Add(time.Hour).Unix()}),
		"no exp":          sign(secret, jwt.MapClaims{"tenant": "charlie"}),
		"no tenant":       sign(secret, jwt.MapClaims{"sub": "carol", "exp": now.Add(time.Hour).Unix()}),
		"not before":      sign(secret, jwt.MapClaims{"tenant": "charlie", "nbf": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}),
		"unsigned (none)": unsignedJWT(t, jwt.MapClaims{"tenant": "charlie", "exp": now.Add(time.Hour).Unix()}),
		"tampered":        tamper(good),
	}
	for name, tok := range refused {
		wantUnauthenticated(t, "JWT "+name, send(t, "GET", sc.URL("/api/v1/emitters"), "", bearer(tok)))
		wantUnauthenticated(t, "JWT "+name+" on queues", send(t, "GET", sc.URL("/v2/queues"), "", bearer(tok)))
	}
}

// unsignedJWT makes an alg "none" token.
func unsignedJWT(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper changes the tenant in the payload and keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), `"charlie"`, `"alpha"`, 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	return strings.Join(parts, ".")
}

// queueReply is a /v2/ws answer or delivery.
type queueReply struct {
	Action  string          `json:"action"`
	Request json.RawMessage `json:"request"`
	Headers struct {
		Status int `json:"status"`
	} `json:"headers"`
	Body json.RawMessage `json:"body"`
}

// queueCall sends one /v2/ws frame and returns its reply, keeping any
// deliveries that arrive before it.
func queueCall(t *testing.T, c *websocket.Conn, action string, h hdr, body string, deliveries *[]queueReply) queueReply {
	t.Helper()
	if body == "" {
		body = "null"
	}
	hb, _ := json.Marshal(h)
	frame := `{"action":"` + action + `","headers":` + string(hb) + `,"body":` + body + `}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatalf("/v2/ws %s: %v", action, err)
	}
	for range 1000 {
		var r queueReply
		readEnvelope(t, c, &r)
		if r.Action == "message_delivery" {
			if deliveries != nil {
				*deliveries = append(*deliveries, r)
			}
			continue
		}
		return r
	}
	t.Fatalf("/v2/ws %s: no reply among 1000 frames", action)
	return queueReply{}
}

// TestAuthQueueTenants: tenant bravo's token can neither list, read, post
// into, claim from nor delete tenant alpha's queues, over REST or /v2/ws;
// naming alpha's project is refused, and its own project never shows
// alpha's queue names, counts or messages.
func TestAuthQueueTenants(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir(), "--auth-token-file", writeTokenFile(t))
	alpha := bearer(tokAlpha).with(hdr{"X-Project-Id": "alpha", "Client-ID": qClient})
	bravo := bearer(tokBravo).with(hdr{"Client-ID": qClient})
	asAlpha := bravo.with(hdr{"X-Project-Id": "alpha"})

	for _, q := range []string{"orders", "alpha-secret-payroll"} {
		if a := send(t, "PUT", sc.URL("/v2/queues/"+q), "", alpha); a.status != http.StatusCreated {
			t.Fatalf("alpha creates %s: %d %s", q, a.status, a.body)
		}
	}
	if a := send(t, "POST", sc.URL("/v2/queues/orders/messages"), `{"messages":[{"body":{"owner":"alpha","n":1}},{"body":{"owner":"alpha","n":2}}]}`, alpha); a.status != http.StatusCreated {
		t.Fatalf("alpha posts: %d %s", a.status, a.body)
	}
	if a := send(t, "PUT", sc.URL("/v2/queues/bravo-jobs"), "", bravo); a.status != http.StatusCreated {
		t.Fatalf("bravo creates its queue: %d %s", a.status, a.body)
	}
	alphaTotal := func(t *testing.T) int {
		t.Helper()
		var st struct{ Messages struct{ Total int } }
		a := send(t, "GET", sc.URL("/v2/queues/orders/stats"), "", alpha)
		if a.status != http.StatusOK {
			t.Fatalf("alpha's stats: %d %s", a.status, a.body)
		}
		a.decode(t, &st)
		return st.Messages.Total
	}

	t.Run("REST", func(t *testing.T) {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/v2/queues", ""},
			{"GET", "/v2/queues/orders", ""},
			{"GET", "/v2/queues/orders/stats", ""},
			{"GET", "/v2/queues/orders/messages?echo=true&include_claimed=true", ""},
			{"POST", "/v2/queues/orders/messages", `{"messages":[{"body":{"owner":"bravo"}}]}`},
			{"POST", "/v2/queues/orders/claims", `{"ttl":60,"grace":30}`},
			{"DELETE", "/v2/queues/orders/messages?ids=0000000000000001", ""},
			{"DELETE", "/v2/queues/orders", ""},
			{"PUT", "/v2/queues/alpha-new", ""},
		} {
			what := r.method + " " + r.path
			if a := send(t, r.method, sc.URL(r.path), r.body, asAlpha); a.status != http.StatusForbidden || a.errorCode() != "forbidden" {
				t.Errorf("bravo's token with X-Project-Id alpha: %s: %d %s, want 403 forbidden", what, a.status, a.body)
			}
			wantUnauthenticated(t, what+" without a token", send(t, r.method, sc.URL(r.path), r.body, hdr{"X-Project-Id": "alpha", "Client-ID": qClient}))
			wantUnauthenticated(t, what+" with an unknown token", send(t, r.method, sc.URL(r.path), r.body, bearer(tokWrong).with(hdr{"X-Project-Id": "alpha", "Client-ID": qClient})))
		}
		// In its own project (named or implied by the token) bravo sees
		// only its queue, and alpha's names mean empty queues of its own.
		for name, h := range map[string]hdr{"implied": bravo, "named": bravo.with(hdr{"X-Project-Id": "bravo"})} {
			a := send(t, "GET", sc.URL("/v2/queues?detailed=true&limit=20"), "", h)
			if a.status != http.StatusOK || !strings.Contains(string(a.body), "bravo-jobs") ||
				strings.Contains(string(a.body), "orders") || strings.Contains(string(a.body), "alpha-secret") {
				t.Errorf("bravo lists its queues (%s project): %d %s", name, a.status, a.body)
			}
		}
		a := send(t, "GET", sc.URL("/v2/queues/orders/stats"), "", bravo)
		if a.status != http.StatusOK || !strings.Contains(string(a.body), `"total":0`) {
			t.Errorf("bravo's stats of orders: %d %s, want its own empty queue", a.status, a.body)
		}
		a = send(t, "GET", sc.URL("/v2/queues/orders/messages?echo=true&include_claimed=true"), "", bravo)
		if a.status != http.StatusOK || strings.Contains(string(a.body), `"alpha"`) {
			t.Errorf("bravo lists messages of orders: %d %s", a.status, a.body)
		}
		a = send(t, "GET", sc.URL("/v2/queues/orders/messages/0000000000000001"), "", bravo)
		if a.status != http.StatusNotFound {
			t.Errorf("bravo gets alpha's message by id: %d %s, want 404", a.status, a.body)
		}
		if a = send(t, "POST", sc.URL("/v2/queues/orders/claims"), `{"ttl":60,"grace":30}`, bravo); a.status != http.StatusNoContent {
			t.Errorf("bravo claims from orders: %d %s, want 204 (nothing of its own)", a.status, a.body)
		}
		// Bravo's post lands in its own orders queue, not alpha's.
		if a = send(t, "POST", sc.URL("/v2/queues/orders/messages"), `{"messages":[{"body":{"owner":"bravo"}}]}`, bravo); a.status != http.StatusCreated {
			t.Errorf("bravo posts into its own orders: %d %s", a.status, a.body)
		}
		if n := alphaTotal(t); n != 2 {
			t.Errorf("alpha's orders hold %d messages, want its own 2", n)
		}
		a = send(t, "GET", sc.URL("/v2/queues?limit=20"), "", alpha)
		if a.status != http.StatusOK || strings.Contains(string(a.body), "bravo-jobs") {
			t.Errorf("alpha lists its queues: %d %s", a.status, a.body)
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		if conn, status, body := tryWS(t, sc.URL("/v2/ws"), bearer(tokWrong)); conn != nil || status != http.StatusUnauthorized {
			t.Errorf("/v2/ws with an unknown token: %d %s, want a refused upgrade with 401", status, body)
		}
		// Authenticated on the upgrade request.
		c, status, body := tryWS(t, sc.URL("/v2/ws"), bearer(tokBravo))
		if c == nil {
			t.Fatalf("/v2/ws with bravo's token: refused %d %s", status, body)
		}
		alphaH := hdr{"X-Project-Id": "alpha", "Client-ID": qClient}
		for _, f := range []struct{ action, body string }{
			{"queue_list", ""},
			{"queue_get", `{"queue_name":"orders"}`},
			{"queue_get_stats", `{"queue_name":"orders"}`},
			{"message_list", `{"queue_name":"orders","echo":true}`},
			{"message_post", `{"queue_name":"orders","messages":[{"body":{"owner":"bravo"}}]}`},
			{"claim_create", `{"queue_name":"orders","ttl":60,"grace":30}`},
			{"queue_delete", `{"queue_name":"orders"}`},
			{"subscription_create", `{"queue_name":"orders","ttl":60}`},
		} {
			if r := queueCall(t, c, f.action, alphaH, f.body, nil); r.Headers.Status != http.StatusForbidden {
				t.Errorf("/v2/ws %s into alpha with bravo's token: %d %s, want 403", f.action, r.Headers.Status, r.Body)
			}
		}
		own := hdr{"Client-ID": qClient}
		if r := queueCall(t, c, "queue_list", own, `{"limit":20}`, nil); r.Headers.Status != 200 ||
			!strings.Contains(string(r.Body), "bravo-jobs") || strings.Contains(string(r.Body), "alpha-secret") {
			t.Errorf("/v2/ws bravo lists its queues: %d %s", r.Headers.Status, r.Body)
		}
		// Bravo subscribes to its own orders; alpha posts into alpha's,
		// then bravo into bravo's: the first delivery is bravo's message.
		if r := queueCall(t, c, "subscription_create", own, `{"queue_name":"orders","ttl":60}`, nil); r.Headers.Status != http.StatusCreated {
			t.Fatalf("/v2/ws bravo subscribes to its orders: %d %s", r.Headers.Status, r.Body)
		}
		if a := send(t, "POST", sc.URL("/v2/queues/orders/messages"), `{"messages":[{"body":{"owner":"alpha","n":3}}]}`, alpha); a.status != http.StatusCreated {
			t.Fatalf("alpha posts again: %d %s", a.status, a.body)
		}
		var got []queueReply
		if r := queueCall(t, c, "message_post", own, `{"queue_name":"orders","messages":[{"body":{"owner":"bravo","n":9}}]}`, &got); r.Headers.Status != http.StatusCreated {
			t.Fatalf("/v2/ws bravo posts into its orders: %d %s", r.Headers.Status, r.Body)
		}
		// Read deliveries until bravo's n=9 arrives (alpha's n=3 was
		// posted first, so a leak would show before it).
		seen := func() bool {
			for _, d := range got {
				if strings.Contains(string(d.Body), `"n":9`) {
					return true
				}
			}
			return false
		}
		for i := 0; !seen() && i < 100; i++ {
			var d queueReply
			readEnvelope(t, c, &d)
			if d.Action == "message_delivery" {
				got = append(got, d)
			}
		}
		if !seen() {
			t.Errorf("bravo's subscription never delivered its own n=9")
		}
		for _, d := range got {
			if !strings.Contains(string(d.Body), `"owner":"bravo"`) || strings.Contains(string(d.Body), `"owner":"alpha"`) {
				t.Errorf("bravo's subscription delivered what is not bravo's: %s", d.Body)
			}
		}
		_ = c.Close()

		// Authenticated by an authenticate frame instead.
		c, status, body = tryWS(t, sc.URL("/v2/ws"), nil)
		if c == nil {
			t.Fatalf("/v2/ws without a token: refused %d %s (the authenticate frame should be allowed)", status, body)
		}
		if r := queueCall(t, c, "queue_list", alphaH, "", nil); r.Headers.Status != http.StatusUnauthorized {
			t.Errorf("/v2/ws queue_list before authenticating: %d %s, want 401", r.Headers.Status, r.Body)
		}
		if r := queueCall(t, c, "authenticate", hdr{"X-Auth-Token": tokWrong}, "", nil); r.Headers.Status != http.StatusUnauthorized {
			t.Errorf("/v2/ws authenticate with an unknown token: %d %s, want 401", r.Headers.Status, r.Body)
		}
		if r := queueCall(t, c, "authenticate", hdr{"X-Auth-Token": tokBravo}, "", nil); r.Headers.Status != 200 || !strings.Contains(string(r.Body), `"bravo"`) {
			t.Fatalf("/v2/ws authenticate as bravo: %d %s", r.Headers.Status, r.Body)
		}
		if r := queueCall(t, c, "queue_list", alphaH, "", nil); r.Headers.Status != http.StatusForbidden {
			t.Errorf("/v2/ws authenticated as bravo, listing alpha: %d %s, want 403", r.Headers.Status, r.Body)
		}
		if r := queueCall(t, c, "queue_get_stats", own, `{"queue_name":"orders"}`, nil); r.Headers.Status != 200 || strings.Contains(string(r.Body), `"total":3`) {
			t.Errorf("/v2/ws bravo's stats of orders: %d %s, must not be alpha's", r.Headers.Status, r.Body)
		}
		if n := alphaTotal(t); n != 3 {
			t.Errorf("alpha's orders hold %d messages, want its own 3", n)
		}
	})
}

// TestAuthListen: a non-loopback --listen is refused without auth (the
// error names listen) and served with a token file. The test only binds
// 0.0.0.0 and talks to it on 127.0.0.1.
func TestAuthListen(t *testing.T) {
	t.Parallel()
	refused := launch(t, t.TempDir(), "--listen", "0.0.0.0:0")
	if code := refused.Wait(t); code == 0 {
		t.Fatalf("serve --listen 0.0.0.0:0 without auth exited 0; logs:\n%s", refused.Logs())
	}
	if logs := refused.Logs(); !strings.Contains(logs, "listen") || !strings.Contains(logs, "0.0.0.0:0") {
		t.Errorf("the refusal does not name listen and the address:\n%s", logs)
	}
	// What the user reads: the field, and the way out.
	cmd := exec.Command(binary, "serve", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "SIDESTREAM_CONFIG=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "listen:") || !strings.Contains(string(out), "--insecure") {
		t.Errorf("refusal output %q (%v) should name listen and the way out (--insecure or auth)", out, err)
	}

	sc := startSidecar(t, t.TempDir(), "--listen", "0.0.0.0:0", "--auth-token-file", writeTokenFile(t))
	_, port, ok := strings.Cut(sc.addr, "]:")
	if !ok {
		_, port, ok = strings.Cut(sc.addr, ":")
	}
	if !ok || port == "" || port == "0" {
		t.Fatalf("serving address %q has no port", sc.addr)
	}
	local := "http://127.0.0.1:" + port
	if a := send(t, "GET", local+"/healthz", "", nil); a.status != http.StatusOK {
		t.Errorf("healthz on the wildcard listener: %d", a.status)
	}
	wantUnauthenticated(t, "emitters on the wildcard listener", send(t, "GET", local+"/api/v1/emitters", "", nil))
	if a := send(t, "GET", local+"/api/v1/emitters", "", bearer(tokAlpha)); a.status != http.StatusOK {
		t.Errorf("emitters with a token on the wildcard listener: %d %s", a.status, a.body)
	}
}
