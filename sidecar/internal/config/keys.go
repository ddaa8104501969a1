package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Key is one setting as the struct tags of Config declare it. Flags,
// environment loading, `config print`, the JSON Schema, the example file
// and the README table are all derived from Keys.
type Key struct {
	// Name is the YAML key, nested ones dotted ("telemetry.otlp_endpoint").
	Name string
	// Env is SIDESTREAM_ + Name upper-cased, dots as underscores.
	Env string
	// StdEnv is a standard variable read before Env (OTEL_*), or "".
	StdEnv string
	// Flag is the flag name without dashes, or "" when there is none
	// (secrets never have one: flags show in the process list).
	Flag string
	Help string
	// Unset says what the zero value means ("none", "automatic: …").
	Unset  string
	Secret bool
	// Enum lists the accepted values, if restricted.
	Enum []string
	// Example is the value the example file shows, in environment syntax.
	Example string
	// Sep separates a list's items in flags and environment.
	Sep string

	index []int
	typ   reflect.Type
}

// Keys are every settable key, in declaration order.
var Keys = keysOf(reflect.TypeFor[Config](), "", nil)

var durationType = reflect.TypeFor[Duration]()

func keysOf(t reflect.Type, prefix string, index []int) []Key {
	var out []Key
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = append(out, keysOf(f.Type, prefix+name+".", idx)...)
			continue
		}
		k := Key{Name: prefix + name, StdEnv: f.Tag.Get("env"), Flag: f.Tag.Get("flag"), Help: f.Tag.Get("help"),
			Unset: f.Tag.Get("unset"), Secret: f.Tag.Get("secret") == "true", Example: f.Tag.Get("example"),
			Sep: f.Tag.Get("sep"), index: idx, typ: f.Type}
		k.Env = EnvName(k.Name)
		if e := f.Tag.Get("enum"); e != "" {
			k.Enum = strings.Split(e, ",")
		}
		if k.Sep == "path" {
			k.Sep = string(os.PathListSeparator)
		}
		out = append(out, k)
	}
	return out
}

// LookupKey returns the key named name.
func LookupKey(name string) (Key, bool) {
	i := slices.IndexFunc(Keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return Key{}, false
	}
	return Keys[i], true
}

// Kind names the key's value type as the docs show it: string, bool,
// integer, number, duration, list or map.
func (k Key) Kind() string {
	switch {
	case k.typ == durationType:
		return "duration"
	case k.typ.Kind() == reflect.Bool:
		return "bool"
	case k.typ.Kind() == reflect.Int, k.typ.Kind() == reflect.Int64:
		return "integer"
	case k.typ.Kind() == reflect.Float64:
		return "number"
	case k.objects():
		return "objects"
	case k.typ.Kind() == reflect.Slice:
		return "list"
	case k.typ.Kind() == reflect.Map:
		return "map"
	}
	return "string"
}

// objects reports whether the key is a list of objects (guest sources
// and rules): YAML or JSON text in its variable, no flag.
func (k Key) objects() bool {
	return k.typ.Kind() == reflect.Slice && k.typ.Elem().Kind() == reflect.Struct
}

// field is the key's field in c.
func (k Key) field(c *Config) reflect.Value { return reflect.ValueOf(c).Elem().FieldByIndex(k.index) }

// Value returns the key's value in c.
func (k Key) Value(c Config) any { return k.field(&c).Interface() }

// IsZero reports whether the key is unset (zero) in c.
func (k Key) IsZero(c Config) bool { return k.field(&c).IsZero() }

// Format writes the key's value of c in the syntax of its flag and
// variable (lists joined by Sep, maps as k1=v1,k2=v2 in key order).
func (k Key) Format(c Config) string {
	v := k.field(&c)
	if k.objects() {
		if v.Len() == 0 {
			return ""
		}
		b, _ := json.Marshal(v.Interface())
		return string(b)
	}
	switch x := v.Interface().(type) {
	case Duration:
		return x.String()
	case []string:
		return strings.Join(x, k.Sep)
	case map[string]string:
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, name+"="+x[name])
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// EnvName is the environment variable of a key.
func EnvName(key string) string {
	return "SIDESTREAM_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// LoadEnv applies the standard OTEL_* variables and then SIDESTREAM_<KEY>
// ones, so the more specific name wins. Lists are separated as the key's
// Sep says; header maps are "k1=v1,k2=v2" as OTel specifies.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	for _, k := range Keys {
		if v, ok := lookup(k.StdEnv); k.StdEnv != "" && ok && v != "" {
			if err := c.Set(k.Name, v); err != nil {
				return fmt.Errorf("%s: %w", k.StdEnv, err)
			}
		}
	}
	for _, k := range Keys {
		if v, ok := lookup(k.Env); ok {
			if err := c.Set(k.Name, v); err != nil {
				return fmt.Errorf("%s: %w", k.Env, err)
			}
		}
	}
	return nil
}

// Set assigns one key from a string in its flag and variable syntax.
func (c *Config) Set(key, v string) error {
	k, ok := LookupKey(key)
	if !ok {
		return &FieldError{key, "unknown key"}
	}
	if err := k.set(k.field(c), v); err != nil {
		return &FieldError{key, err.Error()}
	}
	return nil
}

func (k Key) set(f reflect.Value, v string) error {
	if k.typ == durationType {
		return f.Addr().Interface().(*Duration).Set(v)
	}
	if k.objects() {
		p := reflect.New(k.typ)
		if err := yaml.Unmarshal([]byte(v), p.Interface()); err != nil {
			return fmt.Errorf("%w: %v", errObjects, err)
		}
		f.Set(p.Elem())
		return nil
	}
	switch k.typ.Kind() {
	case reflect.String:
		f.SetString(v)
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		f.SetBool(b)
		return err
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(v, 10, k.typ.Bits())
		f.SetInt(n)
		return err
	case reflect.Float64:
		x, err := strconv.ParseFloat(v, 64)
		f.SetFloat(x)
		return err
	case reflect.Slice:
		f.Set(reflect.ValueOf(splitList(v, k.Sep)))
	case reflect.Map:
		m, err := parseHeaders(v)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(m))
	default:
		panic("config: key " + k.Name + " has a type Set cannot parse")
	}
	return nil
}

// parseHeaders reads "k1=v1,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS syntax).
// The error never quotes a value: values are usually credentials.
func parseHeaders(v string) (map[string]string, error) {
	out := map[string]string{}
	for i, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, val, ok := strings.Cut(part, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		out[k] = strings.TrimSpace(val)
	}
	return out, nil
}

func splitList(v, sep string) []string {
	var out []string
	for _, p := range strings.Split(v, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validateEnums checks every key declared with an enum.
func (c Config) validateEnums() []error {
	var errs []error
	for _, k := range Keys {
		if len(k.Enum) == 0 {
			continue
		}
		if v := k.Format(c); !slices.Contains(k.Enum, v) {
			errs = append(errs, &FieldError{k.Name, fmt.Sprintf("must be one of %s, not %q", strings.Join(k.Enum, ", "), v)})
		}
	}
	return errs
}

// resolve fills the zero values whose meaning follows from other keys, so
// what is printed and used is what is in force.
func (c *Config) resolve() {
	if c.Queues.Driver == "" {
		c.Queues.Driver = "bolt"
		if c.Cluster.Enabled() {
			c.Queues.Driver = "jetstream"
		}
	}
}
