package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	tokReader = "e2e-reader-token-0123456789" // alpha, streams:read only
	tokBravoS = "e2e-bravo-streams-012345678" // bravo, streams and emitters:admin
)

// TestAccessScopesAndTenants, on the built binary: a read-only token
// cannot create or delete emitters, move fib or publish to a tracker
// stream; another tenant neither sees nor deletes alpha's emitter and
// reads its own tracker user, not alpha's; the cookie does not
// authenticate a write even when the request says it wants a stream.
func TestAccessScopesAndTenants(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	body := "tokens:\n" +
		"  - {token: " + tokAlpha + ", tenant: alpha, scopes: ['*']}\n" +
		"  - {token: " + tokReader + ", tenant: alpha, scopes: [streams:read]}\n" +
		"  - {token: " + tokBravoS + ", tenant: bravo, scopes: [streams, emitters:admin]}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := startSidecar(t, t.TempDir(), "--auth-token-file", path)
	var em struct{ ID string }
	if a := send(t, "POST", sc.URL("/api/v1/emitters"), `{"kind":"log","config":{"rate":5}}`, bearer(tokAlpha)); a.status != http.StatusCreated {
		t.Fatalf("alpha creates an emitter: %d %s", a.status, a.body)
	} else {
		a.decode(t, &em)
	}
	if a := send(t, "POST", sc.URL("/track/alice"), `{"v":1}`, bearer(tokAlpha)); a.status != http.StatusAccepted {
		t.Fatalf("alpha publishes: %d %s", a.status, a.body)
	}

	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/emitters", `{"kind":"log","config":{"rate":1}}`},
		{"PUT", "/log", `{"rate":1}`},
		{"DELETE", "/api/v1/emitters/" + em.ID, ""},
		{"POST", "/fib/reset", ""},
		{"GET", "/fib/next", ""},
		{"POST", "/track/alice", `{"v":2}`},
		{"GET", "/track/alice?data=x", ""},
		{"POST", "/api/v1/emitters/fib/commands/next", ""},
		{"GET", "/metrics", ""},
	} {
		a := send(t, c.method, sc.URL(c.path), c.body, bearer(tokReader))
		if a.status != http.StatusForbidden || a.errorCode() != "insufficient_scope" {
			t.Errorf("read-only %s %s: %d %s, want 403 insufficient_scope", c.method, c.path, a.status, a.body)
		}
	}
	if a := send(t, "GET", sc.URL("/api/v1/streams/"+em.ID+"/events"), "", bearer(tokReader)); a.status != http.StatusOK {
		t.Errorf("read-only reads alpha's history: %d %s", a.status, a.body)
	}

	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/emitters/" + em.ID},
		{"DELETE", "/api/v1/emitters/" + em.ID},
		{"GET", "/log/" + em.ID},
		{"GET", "/api/v1/streams/" + em.ID + "/events"},
	} {
		if a := send(t, c.method, sc.URL(c.path), "", bearer(tokBravoS)); a.status != http.StatusNotFound {
			t.Errorf("bravo %s %s: %d %s, want 404", c.method, c.path, a.status, a.body)
		}
	}
	if status, _ := sseWith(t, sc.URL("/sse/log/"+em.ID), bearer(tokBravoS)); status != http.StatusNotFound {
		t.Errorf("bravo's SSE of alpha's emitter: %d, want 404", status)
	}
	if a := send(t, "GET", sc.URL("/api/v1/emitters/"+em.ID), "", bearer(tokAlpha)); a.status != http.StatusOK {
		t.Errorf("alpha's emitter after bravo's delete: %d %s", a.status, a.body)
	}
	if a := send(t, "GET", sc.URL("/api/v1/emitters"), "", bearer(tokBravoS)); strings.Contains(string(a.body), em.ID) {
		t.Errorf("bravo's list shows alpha's emitter: %s", a.body)
	}
	if a := send(t, "GET", sc.URL("/api/v1/streams/track:alice/events"), "", bearer(tokBravoS)); a.status != 200 || strings.Contains(string(a.body), `"v":1`) {
		t.Errorf("bravo reads alice: %d %s, want bravo's own alice without alpha's event", a.status, a.body)
	}
	if a := send(t, "GET", sc.URL("/api/v1/streams/track:alice/events"), "", bearer(tokAlpha)); !strings.Contains(string(a.body), `"v":1`) {
		t.Errorf("alpha reads alice: %s", a.body)
	}

	// The cookie and access_token are for GET stream routes only.
	cookie := hdr{"Cookie": "sidestream_token=" + tokAlpha, "Accept": "text/event-stream"}
	wantUnauthenticated(t, "POST /track with the cookie", send(t, "POST", sc.URL("/track/alice"), `{"v":3}`, cookie))
	wantUnauthenticated(t, "POST /api/v1/emitters with access_token", send(t, "POST", sc.URL("/api/v1/emitters?access_token="+tokAlpha), `{"kind":"log"}`, hdr{"Accept": "text/event-stream"}))
	wantUnauthenticated(t, "DELETE with the cookie", send(t, "DELETE", sc.URL("/api/v1/emitters/"+em.ID), "", cookie))
	if status, s := sseWith(t, sc.URL("/sse/track/alice"), hdr{"Cookie": "sidestream_token=" + tokAlpha}); status != http.StatusOK {
		t.Errorf("SSE with the cookie: %d, want 200", status)
	} else {
		s.Close()
	}
}
