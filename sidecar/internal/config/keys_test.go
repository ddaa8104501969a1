package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/sidecar/internal/config"
)

var update = flag.Bool("update", false, "rewrite the generated files (example YAML, JSON Schema, README table)")

// repo is the repository root, relative to this package.
const repo = "../../.."

// yamlKeys flattens a YAML mapping into dotted leaf keys.
func yamlKeys(t *testing.T, n *yaml.Node, prefix string) []string {
	t.Helper()
	if n.Kind == yaml.DocumentNode {
		return yamlKeys(t, n.Content[0], prefix)
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := prefix+n.Content[i].Value, n.Content[i+1]
		if v.Kind == yaml.MappingNode && !strings.HasSuffix(name, "otlp_headers") {
			out = append(out, yamlKeys(t, v, name+".")...)
			continue
		}
		out = append(out, name)
	}
	return out
}

func keyNames() []string {
	var out []string
	for _, k := range config.Keys {
		out = append(out, k.Name)
	}
	return out
}

// sameSet reports keys missing from got and extra in got.
func sameSet(t *testing.T, what string, got []string) {
	t.Helper()
	want := keyNames()
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("%s lacks key %s", what, k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			t.Errorf("%s has key %s that Config does not declare", what, k)
		}
	}
}

// Every field of Config is a key with help, and names, variables and
// flags are unique: the struct tags are the one declaration.
func TestKeysAreDeclaredOnce(t *testing.T) {
	t.Parallel()
	// An independent path to the struct's keys: what YAML writes of a
	// config whose every field is set.
	full := config.Default()
	for _, k := range config.Keys {
		v := "/x"
		switch k.Kind() {
		case "bool":
			v = "true"
		case "integer", "number":
			v = "1"
		case "duration":
			v = "1s"
		case "map":
			v = "a=b"
		case "objects":
			v = k.Example
		}
		if err := full.Set(k.Name, v); err != nil {
			t.Fatalf("Set(%s): %v", k.Name, err)
		}
	}
	var n yaml.Node
	if err := n.Encode(full); err != nil {
		t.Fatal(err)
	}
	sameSet(t, "YAML of Config", yamlKeys(t, &n, ""))
	seen := map[string]string{}
	for _, k := range config.Keys {
		if k.Help == "" {
			t.Errorf("key %s has no help tag", k.Name)
		}
		if k.Secret && k.Flag != "" {
			t.Errorf("secret key %s has flag --%s (flags show in the process list)", k.Name, k.Flag)
		}
		for _, id := range []string{"key " + k.Name, "env " + k.Env, "flag " + k.Flag} {
			if id == "flag " {
				continue
			}
			if prev, dup := seen[id]; dup {
				t.Errorf("%s declared by %s and %s", id, prev, k.Name)
			}
			seen[id] = k.Name
		}
	}
}

// checkGenerated compares a committed file with what the keys generate,
// or rewrites it with -update.
func checkGenerated(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is not what the config keys generate; run go test ./sidecar/internal/config -run TestGeneratedFiles -update", path)
}

// The example file, the JSON Schema and the README table are generated
// from the keys; a committed copy that drifts fails.
func TestGeneratedFiles(t *testing.T) {
	checkGenerated(t, filepath.Join(repo, "deploy", "sidestream.example.yaml"), config.ExampleYAML())
	checkGenerated(t, filepath.Join(repo, "deploy", "sidestream.schema.json"), config.JSONSchema())
	readme := filepath.Join(repo, "README.md")
	src, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(src, []byte(config.TableBegin)), bytes.Index(src, []byte(config.TableEnd))
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the config table markers %q … %q", config.TableBegin, config.TableEnd)
	}
	want := slices.Concat(src[:i], []byte(config.MarkdownTable()), src[j+len(config.TableEnd):])
	checkGenerated(t, readme, want)
	if *update {
		return
	}
	rows := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllSubmatch(src[i:j], -1)
	var got []string
	for _, r := range rows {
		got = append(got, string(r[1]))
	}
	sameSet(t, "README config table", got)
}

// uncomment turns the example's commented keys into set ones.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ((?:\s*[a-z_]+:(?: |$))|(?:\s*- ))`)

// The example file, with its commented keys set, holds exactly the keys,
// validates against the schema and loads.
func TestExampleFileHasEveryKey(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join(repo, "deploy", "sidestream.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	full := commentedKey.ReplaceAll(src, []byte("$1$2"))
	var n yaml.Node
	if err := yaml.Unmarshal(full, &n); err != nil {
		t.Fatalf("example with comments removed: %v\n%s", err, full)
	}
	sameSet(t, "deploy/sidestream.example.yaml", yamlKeys(t, &n, ""))
	schema := compileSchema(t)
	for name, doc := range map[string][]byte{"as committed": src, "every key set": full} {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("example (%s) does not validate against the schema: %v", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "example.yaml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(config.Sources{File: path}); err != nil {
		t.Errorf("the example does not load: %v", err)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(config.JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sidestream.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("sidestream.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// defaults builds the document of every default the schema declares.
func defaults(schema map[string]any) map[string]any {
	doc := map[string]any{}
	for name, p := range schema["properties"].(map[string]any) {
		prop := p.(map[string]any)
		if d, ok := prop["default"]; ok {
			doc[name] = d
		} else if prop["properties"] != nil {
			doc[name] = defaults(prop)
		}
	}
	return doc
}

// The schema's defaults and what config print writes are valid instances
// of the schema, and the defaults are config.Default's.
func TestSchemaDefaultsAndPrintValidate(t *testing.T) {
	t.Parallel()
	var raw map[string]any
	if err := json.Unmarshal(config.JSONSchema(), &raw); err != nil {
		t.Fatal(err)
	}
	doc := defaults(raw)
	schema := compileSchema(t)
	if err := schema.Validate(doc); err != nil {
		t.Errorf("the schema's own defaults do not validate: %v", err)
	}
	b, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "defaults.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	got, err := config.Load(config.Sources{File: path})
	if err != nil {
		t.Fatalf("the schema's defaults do not load: %v", err)
	}
	want, _ := config.Load(config.Sources{})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the schema's defaults load as %+v, want %+v", got, want)
	}
	printed, err := config.PrintYAML(want)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(printed, &v); err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(v); err != nil {
		t.Errorf("config print output does not validate against the schema: %v\n%s", err, printed)
	}
}

// The schema refuses what the binary refuses: unknown keys, wrong types,
// values outside an enum, durations that do not parse.
func TestSchemaRejectsBadFiles(t *testing.T) {
	t.Parallel()
	schema := compileSchema(t)
	for _, doc := range []string{
		"listne: 127.0.0.1:9000", "telemetry:\n  otlp_endpiont: x", "insecure: maybe",
		"log_format: xml", "heartbeat: soon", "cluster:\n  replicas: two", "log_roots: /a",
	} {
		var v any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if schema.Validate(v) == nil {
			t.Errorf("schema accepts %q", doc)
		}
		path := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(config.Sources{File: path}); err == nil {
			t.Errorf("Load accepts %q, which the schema refuses", doc)
		}
	}
}

// Flags come from the keys: every key with a flag has it, list flags
// repeat, and values reach the config through Load.
func TestFlagsFromKeys(t *testing.T) {
	t.Parallel()
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.RegisterFlags(f)
	var flags []string
	f.VisitAll(func(fl *pflag.Flag) { flags = append(flags, fl.Name) })
	for _, k := range config.Keys {
		if k.Flag != "" && !slices.Contains(flags, k.Flag) {
			t.Errorf("key %s: no flag --%s", k.Name, k.Flag)
		}
	}
	err := f.Parse([]string{"--log-root", "/a", "--log-root", "/b", "--cluster-name", "c1", "--cluster-routes",
		"nats-route://n2:6222,nats-route://n3:6222", "--insecure", "--queue-min-message-ttl", "1s", "--cluster-replicas", "3"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{Flags: config.FlagSettings(f)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.LogRoots, []string{"/a", "/b"}) || len(cfg.Cluster.Routes) != 2 || !cfg.Insecure ||
		cfg.Queues.MinMessageTTL != config.Duration(time.Second) || cfg.Cluster.Replicas != 3 || cfg.Queues.Driver != "jetstream" {
		t.Errorf("flags not applied: %+v", cfg)
	}
	if got := f.Lookup("heartbeat").DefValue; got != "15s" {
		t.Errorf("--heartbeat shows default %q, want 15s", got)
	}
	_, err = config.Load(config.Sources{Flags: []config.Setting{{Key: "cluster.replicas", Value: "two", Source: "--cluster-replicas"}}})
	if err == nil || !strings.Contains(err.Error(), "--cluster-replicas") || !strings.Contains(err.Error(), "cluster.replicas") {
		t.Errorf("a bad flag value is not reported by flag and key: %v", err)
	}
}

// config print shows what is in force: the queue ttl minimums the queue
// service enforces, the resolved driver, and what an automatic zero means.
func TestPrintShowsValuesInForce(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := config.PrintYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"min_message_ttl: 1m0s", "min_claim_ttl: 1m0s", "driver: bolt",
		"replicas: 0 # automatic (1 for one or two nodes, 3 from three)", "tenant_claim: tenant"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	var back config.Config
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("printed config does not read back: %v", err)
	}
	if back.Queues != cfg.Queues || back.Listen != cfg.Listen {
		t.Errorf("printed config reads back as %+v, want %+v", back.Queues, cfg.Queues)
	}
	// A zero minimum would become 60s inside the queue service: refused.
	for _, key := range []string{"queues.min_message_ttl", "queues.min_claim_ttl"} {
		if _, err := config.Load(config.Sources{Flags: []config.Setting{{Key: key, Value: "0s"}}}); err == nil {
			t.Errorf("%s=0s accepted", key)
		}
	}
}
