package httpapi

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/web"
)

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// openAPIRoutes lists "METHOD /path" of the document, path params in
// Hertz syntax.
func openAPIRoutes(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q, want 3.1.x", d.OpenAPI)
	}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	var out []string
	for p, item := range d.Paths {
		for m, op := range item {
			if !httpMethods[m] {
				continue
			}
			var o struct {
				Responses map[string]any `yaml:"responses"`
			}
			if err := op.Decode(&o); err != nil || len(o.Responses) == 0 {
				t.Errorf("%s %s: no responses documented (%v)", m, p, err)
			}
			out = append(out, strings.ToUpper(m)+" "+param.ReplaceAllString(p, ":$1"))
		}
	}
	sort.Strings(out)
	return out
}

// The document describes exactly the routes the router serves.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	var router []string
	for _, r := range e.srv.h.Routes() {
		router = append(router, r.Method+" "+r.Path)
	}
	sort.Strings(router)
	doc := openAPIRoutes(t, web.OpenAPI)
	inDoc := map[string]bool{}
	for _, r := range doc {
		inDoc[r] = true
	}
	inRouter := map[string]bool{}
	for _, r := range router {
		inRouter[r] = true
		if !inDoc[r] {
			t.Errorf("route %s is served but not in web/openapi.yaml", r)
		}
	}
	for _, r := range doc {
		if !inRouter[r] {
			t.Errorf("route %s is in web/openapi.yaml but not served", r)
		}
	}
	if len(router) < 30 {
		t.Fatalf("only %d routes registered: %v", len(router), router)
	}
}

// The comparison itself notices a difference in either direction.
func TestOpenAPIComparisonDetectsDrift(t *testing.T) {
	t.Parallel()
	doc := []byte("openapi: 3.1.0\npaths:\n  /a/{id}:\n    get: {responses: {\"200\": {description: ok}}}\n    parameters: []\n")
	got := openAPIRoutes(t, doc)
	if len(got) != 1 || got[0] != "GET /a/:id" {
		t.Fatalf("parsed %v", got)
	}
}
