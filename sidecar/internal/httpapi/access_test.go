package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/web"
)

// Tokens of the access tests: tenant "a" with every scope, tenant "b"
// with every scope, and per scope one of tenant "a" holding all but it.
const (
	tokA       = "tenant-a-all-scopes-0001"
	tokB       = "tenant-b-all-scopes-0002"
	tokUnknown = "nobody-knows-this-token-9"
)

func lackToken(scope string) string { return "lacks-" + strings.ReplaceAll(scope, ":", "-") + "-0003" }

func accessEnv(t *testing.T) *env {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"tokens":[`)
	fmt.Fprintf(&b, `{"token":%q,"tenant":"a","scopes":["*"]},{"token":%q,"tenant":"b","scopes":["*"]}`, tokA, tokB)
	for _, scope := range auth.Scopes {
		others := slices.DeleteFunc(slices.Clone(auth.Scopes), func(s string) bool { return s == scope })
		fmt.Fprintf(&b, `,{"token":%q,"tenant":"a","scopes":["%s"]}`, lackToken(scope), strings.Join(others, `","`))
	}
	b.WriteString(`]}`)
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{TokenFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvAuth(t, Options{}, slog.New(slog.DiscardHandler), a)
}

// status sends a request and returns its status and body's first bytes
// without reading a stream response to its end.
func (e *env) status(method, path, token string) (int, string) {
	e.t.Helper()
	var body *strings.Reader
	if method == "POST" || method == "PUT" {
		body = strings.NewReader(`{"kind":"log","config":{"rate":1}}`)
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, string(buf[:n])
}

func (e *env) createAs(token, id string) {
	e.t.Helper()
	st, _, body := e.do("POST", "/api/v1/emitters", `{"id":"`+id+`","kind":"log","config":{"rate":1}}`, "Authorization", "Bearer "+token)
	if st != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", id, st, body)
	}
}

// concrete fills a route's parameters: the emitter and tracker user of
// tenant "a".
func concrete(path, emitterID string) string {
	r := strings.NewReplacer(":id", emitterID, ":stream", emitterID, ":user", "alice", ":asset", "app.js", ":name", "current")
	return r.Replace(path)
}

// TestAccessEveryRoute walks the route table: every route declares a
// scope; a public one answers without a token; every other one answers
// 401 without a token or with an unknown one, 403 insufficient_scope to a
// token holding every scope but the route's, passes a token holding it,
// and hides tenant a's emitter from tenant b (404). A route added without
// a scope fails New, and one added with a wrong one fails here.
func TestAccessEveryRoute(t *testing.T) {
	e := accessEnv(t)
	const em = "a-em"
	e.createAs(tokA, em)
	if len(e.srv.routes) == 0 {
		t.Fatal("no routes")
	}
	for _, r := range e.srv.routes {
		what := r.Method + " " + r.Path
		path := concrete(r.Path, em)
		if r.Scope == "" {
			t.Errorf("%s declares no scope", what)
			continue
		}
		if r.Scope == auth.ScopePublic {
			if st, body := e.status(r.Method, path, ""); st == 401 || st == 403 {
				t.Errorf("public %s without a token: %d %s", what, st, body)
			}
			continue
		}
		if r.Scope == authenticated {
			// Any valid token, even one without a scope the route needs.
			if st, body := e.status(r.Method, path, ""); st != 401 {
				t.Errorf("%s without a token: %d %s, want 401", what, st, body)
			}
			if st, body := e.status(r.Method, path, lackToken(auth.ScopeStreamsRead)); st != 200 {
				t.Errorf("%s with a valid token: %d %s, want 200", what, st, body)
			}
			continue
		}
		if !slices.Contains(auth.Scopes, r.Scope) {
			t.Errorf("%s declares unknown scope %q", what, r.Scope)
			continue
		}
		for name, tok := range map[string]string{"no token": "", "an unknown token": tokUnknown} {
			if st, body := e.status(r.Method, path, tok); st != 401 || !strings.Contains(body, `"unauthenticated"`) {
				t.Errorf("%s with %s: %d %s, want 401 unauthenticated", what, name, st, body)
			}
		}
		if st, body := e.status(r.Method, path, lackToken(r.Scope)); st != 403 || !strings.Contains(body, `"insufficient_scope"`) {
			t.Errorf("%s without scope %s: %d %s, want 403 insufficient_scope", what, r.Scope, st, body)
		}
		if strings.Contains(r.Path, ":id") || strings.Contains(r.Path, ":stream") {
			if st, body := e.status(r.Method, path, tokB); st != 404 {
				t.Errorf("%s by tenant b on tenant a's emitter: %d %s, want 404", what, st, body)
			}
		}
		if r.Method == "DELETE" {
			continue // checked below, once every other route has run
		}
		if st, body := e.status(r.Method, path, tokA); st == 401 || st == 403 || strings.Contains(body, `"not_found"`) && r.Path != "/metrics" {
			t.Errorf("%s as its owner with the scope: %d %s", what, st, body)
		}
	}
	if st, body := e.status("DELETE", "/api/v1/emitters/"+em, tokA); st != http.StatusNoContent {
		t.Errorf("delete by its owner: %d %s", st, body)
	}
	// Emitters without a tenant: every tenant reads them, deleting needs
	// "*"; the built-in ones behind the shared routes not even with it.
	if _, err := e.ems.Create(context.Background(), emitter.CreateRequest{ID: "untenanted", Kind: "log", Retention: &emitter.Retention{}}); err != nil {
		t.Fatal(err)
	}
	if st, body := e.status("DELETE", "/api/v1/emitters/untenanted", lackToken(auth.ScopeMetricsRead)); st != 403 || !strings.Contains(body, `"forbidden"`) {
		t.Errorf("delete a tenant-less emitter with emitters:admin only: %d %s, want 403", st, body)
	}
	if st, body := e.status("DELETE", "/api/v1/emitters/magic", tokA); st != http.StatusConflict || !strings.Contains(body, `"shared_emitter"`) {
		t.Errorf("delete the built-in magic with \"*\": %d %s, want 409 shared_emitter", st, body)
	}
}

// TestAccessMountedRoutes: every route on the server that the table does
// not hold (the queue API mounted beside it) refuses a request without a
// token, so a mounted route cannot skip authentication either. /v2/ws is
// the exception by protocol: its client may authenticate with its first
// frame (queueapi's tests).
func TestAccessMountedRoutes(t *testing.T) {
	e := accessEnv(t)
	inTable := map[string]bool{}
	for _, r := range e.srv.routes {
		inTable[r.Method+" "+r.Path] = true
	}
	mounted := 0
	for _, r := range e.srv.h.Routes() {
		if inTable[r.Method+" "+r.Path] || r.Path == "/v2/ws" {
			continue
		}
		mounted++
		path := strings.NewReplacer(":queue_name", "q1", ":id", "m1", ":claim", "c1").Replace(r.Path)
		if st, body := e.status(r.Method, path, ""); st != 401 {
			t.Errorf("mounted %s %s without a token: %d %s, want 401", r.Method, r.Path, st, body)
		}
	}
	if mounted == 0 {
		t.Fatal("no mounted routes seen")
	}
}

// TestAccessTrackerTenants: tracker users are per tenant; b's alice is
// not a's, and a client cannot name another tenant's user.
func TestAccessTrackerTenants(t *testing.T) {
	e := accessEnv(t)
	if st, body := e.status("POST", "/track/alice", tokA); st != http.StatusAccepted {
		t.Fatalf("publish as a: %d %s", st, body)
	}
	if st, body := e.status("GET", "/api/v1/streams/track:alice/events", tokA); st != 200 || !strings.Contains(body, `"head":1`) {
		t.Errorf("a reads its alice: %d %s, want head 1", st, body)
	}
	if st, body := e.status("GET", "/api/v1/streams/track:alice/events", tokB); st != 200 || !strings.Contains(body, `"events":[]`) {
		t.Errorf("b reads alice: %d %s, want b's own empty stream", st, body)
	}
	for _, path := range []string{"/api/v1/streams/track:a%2Falice/events", "/api/v1/streams/track:a/alice/events", "/api/v1/streams/track:alice/events?x=1"} {
		st, body := e.status("GET", path, tokB)
		if st == 200 && !strings.Contains(body, `"events":[]`) {
			t.Errorf("b names a's user by %s: %d %s", path, st, body)
		}
	}
	// The emitter list shows a tenant its own emitters and the shared ones.
	e.createAs(tokA, "a-em")
	_, _, list := e.do("GET", "/api/v1/emitters", "", "Authorization", "Bearer "+tokB)
	if strings.Contains(string(list), `"a-em"`) || !strings.Contains(string(list), `"magic"`) {
		t.Errorf("b's list: %s, want magic and not a's a-em", list)
	}
}

// TestOpenAPIScopes: the document names each route's scope (x-scope) as
// the route table declares it, public routes need no token (security:
// []), and every other operation documents its 401 (and its 403 when a
// scope is needed).
func TestOpenAPIScopes(t *testing.T) {
	t.Parallel()
	var d struct {
		Paths map[string]map[string]struct {
			Scope     string         `yaml:"x-scope"`
			Security  *[]any         `yaml:"security"`
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(web.OpenAPI, &d); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:(\w+)`)
	s := &Server{}
	for _, r := range s.table() {
		p := param.ReplaceAllString(r.Path, "{$1}")
		op, ok := d.Paths[p][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s %s: not in openapi.yaml", r.Method, p)
			continue
		}
		if op.Scope != r.Scope {
			t.Errorf("%s %s: x-scope %q, the route needs %q", r.Method, p, op.Scope, r.Scope)
		}
		if r.Scope == auth.ScopePublic {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s %s: public, but its security is not []", r.Method, p)
			}
			continue
		}
		if op.Responses["401"] == nil {
			t.Errorf("%s %s: no 401 documented", r.Method, p)
		}
		if r.Scope != authenticated && op.Responses["403"] == nil {
			t.Errorf("%s %s: no 403 documented", r.Method, p)
		}
	}
}
