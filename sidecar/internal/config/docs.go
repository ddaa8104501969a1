package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file derives the documents of the configuration from Keys: the
// YAML `config print` writes, the example file, the README table and the
// JSON Schema. A test keeps the committed copies equal to them.

// PrintYAML writes c redacted as YAML, every key unset by choice commented
// with what that means (e.g. `replicas: 0 # automatic: …`).
func PrintYAML(c Config) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c.Redacted()); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	annotate(&doc, "", c)
	return encodeYAML(&doc)
}

func annotate(n *yaml.Node, prefix string, c Config) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, val := prefix+n.Content[i].Value, n.Content[i+1]
		if k, ok := LookupKey(name); ok {
			if k.Unset != "" && k.IsZero(c) {
				val.LineComment = k.Unset
			}
		} else if val.Kind == yaml.MappingNode {
			annotate(val, name+".", c)
		}
	}
}

func encodeYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// exampleHeader opens the example file.
const exampleHeader = `# yaml-language-server: $schema=sidestream.schema.json
# sidestream example configuration, generated from the keys declared in
# sidecar/internal/config (regenerate: go test ./sidecar/internal/config -run TestGeneratedFiles -update).
# Every key is optional; precedence is defaults < this file < SIDESTREAM_* (and
# OTEL_*) environment < flags. ` + "`sidestream config print --config FILE`" + ` shows the
# effective result, secrets redacted; ` + "`sidestream config schema`" + ` prints the JSON
# Schema of this file (sidestream.schema.json). Commented keys are secrets, best
# set from their variable, or keys whose unset value is automatic (their comment
# says what it means).
`

// ExampleYAML is deploy/sidestream.example.yaml: every key with its help,
// variable, flag and default (or example) value.
func ExampleYAML() []byte {
	var b strings.Builder
	b.WriteString(exampleHeader)
	section := ""
	for _, k := range Keys {
		parent, leaf, indent := "", k.Name, ""
		if i := strings.LastIndexByte(k.Name, '.'); i >= 0 {
			parent, leaf, indent = k.Name[:i], k.Name[i+1:], "  "
		}
		if parent != section {
			fmt.Fprintf(&b, "\n%s:\n", parent)
			section = parent
		} else {
			b.WriteString("\n")
		}
		for _, line := range wrap(k.describe(), 96) {
			fmt.Fprintf(&b, "%s# %s\n", indent, line)
		}
		c, comment := Default(), ""
		if k.Example != "" {
			if err := c.Set(k.Name, k.Example); err != nil {
				panic("config: example of " + k.Name + ": " + err.Error())
			}
		}
		// Secrets belong in variables; a key whose unset value means
		// something automatic is shown but left unset.
		if k.Secret || (k.IsZero(Default()) && k.Unset != "" && k.Unset != "none") {
			comment = "# "
		}
		writeValue(&b, indent, comment, leaf, k.Value(c))
	}
	return []byte(b.String())
}

// help is the key's help with its accepted values.
func (k Key) help() string {
	if len(k.Enum) == 0 {
		return k.Help
	}
	last := len(k.Enum) - 1
	if last == 0 {
		return k.Help + ": " + k.Enum[0]
	}
	return k.Help + ": " + strings.Join(k.Enum[:last], ", ") + " or " + k.Enum[last]
}

// describe is the key's help with where else it is set and its default
// when unset.
func (k Key) describe() string {
	s := k.help() + " (" + k.Env
	if k.StdEnv != "" {
		s += ", " + k.StdEnv
	}
	if k.Flag != "" {
		s += ", --" + k.Flag
	}
	s += ")"
	if k.Unset != "" {
		s += "; if unset, " + k.Unset
	}
	if k.Secret {
		s += "; a secret, redacted by config print and best set from " + k.Env
	}
	return s + "."
}

// writeValue writes `leaf: value` at indent, each line prefixed by
// comment; lists and maps go on the lines below.
func writeValue(b *strings.Builder, indent, comment, leaf string, v any) {
	out, err := yaml.Marshal(v)
	if err != nil {
		panic("config: " + leaf + ": " + err.Error())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) == 1 && !strings.HasPrefix(lines[0], "- ") && !strings.Contains(lines[0], ": ") {
		fmt.Fprintf(b, "%s%s%s: %s\n", indent, comment, leaf, lines[0])
		return
	}
	fmt.Fprintf(b, "%s%s%s:\n", indent, comment, leaf)
	for _, l := range lines {
		fmt.Fprintf(b, "%s%s  %s\n", indent, comment, l)
	}
}

// wrap splits s into lines of at most width runes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// Table markers delimit the generated table in README.md.
const (
	TableBegin = "<!-- config keys: generated by go test ./sidecar/internal/config -run TestGeneratedFiles -update -->"
	TableEnd   = "<!-- end of config keys -->"
)

// MarkdownTable is the README table of every key, markers included.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString(TableBegin + "\n\n| file key | variable | flag | default | meaning |\n|---|---|---|---|---|\n")
	def := Default()
	for _, k := range Keys {
		env := "`" + k.Env + "`"
		if k.StdEnv != "" {
			env += ", `" + k.StdEnv + "`"
		}
		flag := ""
		if k.Flag != "" {
			flag = "`--" + k.Flag + "`"
		}
		dflt := "`" + k.Format(def) + "`"
		if k.IsZero(def) && k.Unset != "" {
			dflt = k.Unset
		}
		help := k.help()
		if k.Secret {
			help = "**secret** (redacted by `config print`): " + help
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Name, env, flag, dflt, help)
	}
	b.WriteString("\n" + TableEnd)
	return b.String()
}

// durationPattern is what time.ParseDuration accepts.
const durationPattern = `^[-+]?(0|([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$`

// JSONSchema is the JSON Schema (2020-12) of the YAML config file.
func JSONSchema() []byte {
	root := objectSchema()
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["title"] = "sidestream configuration"
	root["description"] = "The YAML file of sidestream serve --config; every key is optional."
	def := Default()
	for _, k := range Keys {
		props := root["properties"].(map[string]any)
		parts := strings.Split(k.Name, ".")
		for _, p := range parts[:len(parts)-1] {
			if props[p] == nil {
				props[p] = objectSchema()
			}
			props = props[p].(map[string]any)["properties"].(map[string]any)
		}
		props[parts[len(parts)-1]] = k.schema(def)
	}
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic("config: schema: " + err.Error())
	}
	return append(out, '\n')
}

func objectSchema() map[string]any {
	return map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{}}
}

func (k Key) schema(def Config) map[string]any {
	s := map[string]any{"description": k.describe()}
	switch k.Kind() {
	case "duration":
		s["type"], s["pattern"] = "string", durationPattern
	case "bool":
		s["type"] = "boolean"
	case "integer", "number":
		s["type"] = k.Kind()
	case "list":
		s["type"], s["items"] = "array", map[string]any{"type": "string"}
	case "objects":
		s["type"], s["items"] = "array", structSchema(k.typ.Elem())
	case "map":
		s["type"], s["additionalProperties"] = "object", map[string]any{"type": "string"}
	default:
		s["type"] = "string"
	}
	if len(k.Enum) > 0 {
		s["enum"] = k.Enum
	}
	if k.Secret {
		s["writeOnly"] = true
	}
	if !k.IsZero(def) {
		s["default"] = k.Value(def)
		if k.Kind() == "duration" {
			s["default"] = k.Format(def) // as the file writes it, not nanoseconds
		}
	}
	return s
}

// structSchema is the JSON Schema of an object of a list key, from the
// yaml and help tags of its fields.
func structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		s := typeSchema(f.Type)
		if h := f.Tag.Get("help"); h != "" {
			s["description"] = h
		}
		props[name] = s
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

func typeSchema(t reflect.Type) map[string]any {
	switch {
	case t.Kind() == reflect.Pointer: // an optional field: the schema of what it points to
		return typeSchema(t.Elem())
	case t == durationType:
		return map[string]any{"type": "string", "pattern": durationPattern}
	case t.Kind() == reflect.Struct:
		return structSchema(t)
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem())}
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.String:
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object"}
	case t.Kind() == reflect.Int:
		return map[string]any{"type": "integer"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	}
	return map[string]any{"type": "string"}
}
