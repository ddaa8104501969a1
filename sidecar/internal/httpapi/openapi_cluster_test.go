package httpapi

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/web"
)

// openAPISchema is the part of a JSON Schema the comparison walks.
type openAPISchema struct {
	Ref        string                    `yaml:"$ref"`
	Type       string                    `yaml:"type"`
	Properties map[string]*openAPISchema `yaml:"properties"`
	Items      *openAPISchema            `yaml:"items"`
}

// schemaDrift lists the differences between the document's schema s (refs
// resolved in all) and the JSON fields of Go type typ, by path.
func schemaDrift(path string, s *openAPISchema, typ reflect.Type, all map[string]*openAPISchema) []string {
	for s != nil && s.Ref != "" {
		s = all[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if s == nil {
		return []string{path + ": no schema"}
	}
	switch typ.Kind() {
	case reflect.Slice:
		return schemaDrift(path+"[]", s.Items, typ.Elem(), all)
	case reflect.Struct:
		if typ.PkgPath() == "time" {
			return nil
		}
	default:
		return nil
	}
	var out []string
	fields := map[string]bool{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = true
		out = append(out, schemaDrift(path+"."+name, s.Properties[name], f.Type, all)...)
	}
	for name := range s.Properties {
		if !fields[name] {
			out = append(out, path+"."+name+": documented, not in "+typ.Name())
		}
	}
	return out
}

func openAPISchemas(t *testing.T, doc []byte) map[string]*openAPISchema {
	t.Helper()
	var d struct {
		Components struct {
			Schemas map[string]*openAPISchema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return d.Components.Schemas
}

// The documented Cluster schema has exactly the JSON fields of api.Cluster,
// at every depth; a renamed or missing field is caught.
func TestOpenAPIClusterSchemaMatchesAPI(t *testing.T) {
	t.Parallel()
	all := openAPISchemas(t, web.OpenAPI)
	if drift := schemaDrift("Cluster", all["Cluster"], reflect.TypeFor[api.Cluster](), all); len(drift) > 0 {
		t.Errorf("openapi.yaml Cluster differs from api.Cluster:\n%s", strings.Join(drift, "\n"))
	}
	renamed := strings.Replace(string(web.OpenAPI), "meta_leader: {type: string", "metaleader: {type: string", 1)
	all = openAPISchemas(t, []byte(renamed))
	drift := schemaDrift("Cluster", all["Cluster"], reflect.TypeFor[api.Cluster](), all)
	slices.Sort(drift)
	want := []string{"Cluster.nats.jetstream.meta_leader: no schema", "Cluster.nats.jetstream.metaleader: documented, not in JetStreamState"}
	if !slices.Equal(drift, want) {
		t.Errorf("a renamed field gave %q, want %q", drift, want)
	}
}
