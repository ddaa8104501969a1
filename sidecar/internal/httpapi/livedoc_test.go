package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/web"
)

// Every file of the page is served from the binary with its type and the
// CSP that keeps the page on this node; every file the page references
// exists (there is no build step to catch a broken reference).
func TestLivedocServesEmbeddedFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	code, hdr, body := e.do("GET", "/livedoc", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("/livedoc/app.js")) {
		t.Fatalf("/livedoc: %d %s", code, hdr.Get("Content-Type"))
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("/livedoc CSP %q does not keep requests on this node", csp)
	}
	names, err := fs.Glob(web.Livedoc, "livedoc/*")
	if err != nil || len(names) < 5 {
		t.Fatalf("embedded livedoc files %v (%v)", names, err)
	}
	wantType := map[string]string{".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	refs := regexp.MustCompile(`(?:src|href)="/livedoc/([^"]+)"|from '\./([^']+)'|import\('\./([^']+)'\)`)
	for _, name := range names {
		base := path.Base(name)
		want, _ := fs.ReadFile(web.Livedoc, name)
		code, hdr, got := e.do("GET", "/livedoc/"+base, "")
		if code != 200 || !bytes.Equal(got, want) {
			t.Errorf("/livedoc/%s: %d, %d bytes, want 200 and the embedded %d bytes", base, code, len(got), len(want))
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, wantType[path.Ext(base)]) || wantType[path.Ext(base)] == "" {
			t.Errorf("/livedoc/%s: Content-Type %q", base, ct)
		}
		for _, m := range refs.FindAllStringSubmatch(string(want), -1) {
			ref := m[1] + m[2] + m[3]
			if _, err := fs.Stat(web.Livedoc, "livedoc/"+ref); err != nil {
				t.Errorf("%s references %q, which is not embedded", base, ref)
			}
		}
	}
	for _, bad := range []string{"/livedoc/nope.js", "/livedoc/sub%2Fapp.js", "/livedoc/.hidden.js", "/livedoc/embed.go", "/livedoc/index"} {
		if code, _, _ := e.do("GET", bad, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", bad, code)
		}
	}
	// A dot segment, encoded or not, is refused at the door for every route.
	if code, _, body := e.do("GET", "/livedoc/..%2Fembed.go", ""); code != http.StatusBadRequest || !bytes.Contains(body, []byte(`"error"`)) {
		t.Errorf("GET /livedoc/..%%2Fembed.go: %d %s, want 400 with the JSON error", code, body)
	}
}

// /openapi.json is the YAML document, value for value and in its order.
func TestOpenAPIJSONEqualsYAML(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	code, hdr, body := e.do("GET", "/openapi.json", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("/openapi.json: %d %s", code, hdr.Get("Content-Type"))
	}
	var fromJSON, fromYAML any
	if err := json.Unmarshal(body, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(web.OpenAPI, &fromYAML); err != nil {
		t.Fatal(err)
	}
	viaJSON, err := json.Marshal(fromYAML) // same number and map types as fromJSON
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(viaJSON, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, want) {
		t.Fatal("/openapi.json differs from openapi.yaml")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(web.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var yamlOrder []string
	paths := mappingValue(doc.Content[0], "paths").Content
	for i := 0; i < len(paths); i += 2 {
		yamlOrder = append(yamlOrder, paths[i].Value)
	}
	if jsonOrder := jsonPathOrder(t, body); !reflect.DeepEqual(jsonOrder, yamlOrder) {
		t.Errorf("path order\n json %v\n yaml %v", jsonOrder, yamlOrder)
	}
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return &yaml.Node{}
}

// jsonPathOrder lists the keys of "paths" in document order.
func jsonPathOrder(t *testing.T, body []byte) []string {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(top["paths"]))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

type describingPlugins struct {
	fakePlugins
	kinds map[string]emitter.Kind
}

func (d describingPlugins) Describe(_ context.Context, kind string) (emitter.Kind, error) {
	k, ok := d.kinds[kind]
	if !ok {
		return emitter.Kind{}, errors.New("plugin failed")
	}
	return k, nil
}

// /api/v1/kinds shows what the create form needs (schema, commands), and a
// kind that cannot describe itself with its error rather than failing all.
func TestListKinds(t *testing.T) {
	t.Parallel()
	schema := json.RawMessage(`{"type":"object","properties":{"rate":{"type":"number"}}}`)
	procs := fakePlugins{{Name: "time", State: "running"}, {Name: "magic", Version: "1.0.0", State: "running"}, {Name: "broken", State: "failed"}}
	tests := []struct {
		name    string
		plugins Plugins
		want    string
	}{
		{"no plugins", nil, `{"items":[]}`},
		{"names only without a describer", procs,
			`{"items":[{"name":"broken","version":"","state":"failed"},{"name":"magic","version":"1.0.0","state":"running"},{"name":"time","version":"","state":"running"}]}`},
		{"described", describingPlugins{procs, map[string]emitter.Kind{
			"magic": {Name: "magic", Version: "1.0.0", ConfigSchema: schema, EventTypes: []string{"magic"}},
			"time":  {Name: "time", Version: "1.0.0", Commands: []emitter.CommandSpec{{Name: "now"}}},
		}}, `{"items":[` +
			`{"name":"broken","version":"","state":"failed","error":"plugin failed"},` +
			`{"name":"magic","version":"1.0.0","config_schema":` + string(schema) + `,"event_types":["magic"],"state":"running"},` +
			`{"name":"time","version":"1.0.0","commands":[{"name":"now"}],"state":"running"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Server{d: Deps{Plugins: tc.plugins}}
			c := app.NewContext(0)
			if err := s.listKinds(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			if c.Response.StatusCode() != 200 {
				t.Fatalf("status %d", c.Response.StatusCode())
			}
			var got, want any
			if err := json.Unmarshal(c.Response.Body(), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %s\nwant %s", c.Response.Body(), tc.want)
			}
		})
	}
}
