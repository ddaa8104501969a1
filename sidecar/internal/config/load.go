package config

import (
	"fmt"
	"log/slog"
	"reflect"
)

// Setting is one key set from a flag, already mapped to its config key.
type Setting struct {
	Key, Value string
	// Source names where it came from in errors ("--listen").
	Source string
}

// Sources are the layers of Load, weakest first after the defaults.
type Sources struct {
	// File is a YAML file; empty means none.
	File string
	// Env looks up environment variables (os.LookupEnv); nil means none.
	Env func(string) (string, bool)
	// Flags are the flags the user set, in any order.
	Flags []Setting
}

// Load layers defaults < file < environment < flags and validates the
// result. Every error names its field.
func Load(src Sources) (Config, error) {
	cfg := Default()
	if src.File != "" {
		if err := cfg.LoadFile(src.File); err != nil {
			return cfg, err
		}
	}
	if src.Env != nil {
		if err := cfg.LoadEnv(src.Env); err != nil {
			return cfg, err
		}
	}
	for _, s := range src.Flags {
		if err := cfg.Set(s.Key, s.Value); err != nil {
			return cfg, fmt.Errorf("%s: %w", s.Source, err)
		}
	}
	cfg.resolve()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// RedactedValue replaces a set secret in Redacted output.
const RedactedValue = "[redacted]"

// Redacted returns a copy whose fields tagged `secret:"true"` hold
// RedactedValue instead of their value (empty ones stay empty, so the
// output still tells whether a secret is set). Use it for anything printed
// or logged.
func (c Config) Redacted() Config {
	redact(reflect.ValueOf(&c).Elem())
	return c
}

// redact walks struct fields and blanks tagged strings and string maps; a
// new secret field only needs the tag.
func redact(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		if fv.Kind() == reflect.Struct {
			redact(fv)
			continue
		}
		if f.Tag.Get("secret") != "true" {
			continue
		}
		switch fv.Kind() {
		case reflect.String:
			if fv.Len() > 0 {
				fv.SetString(RedactedValue)
			}
		case reflect.Map:
			if m, ok := fv.Interface().(map[string]string); ok {
				fv.Set(reflect.ValueOf(redactMap(m)))
			}
		default:
			panic("config: secret field " + f.Name + " has a kind Redacted cannot blank")
		}
	}
}

// redactMap copies m with every value redacted (the keys, e.g. header
// names, are not secret); the original map is shared and never modified.
func redactMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = RedactedValue
	}
	return out
}

// LogValue makes slog print the redacted config, every key by its name,
// so secrets never reach logs even when the whole config is logged.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	attrs := make([]slog.Attr, 0, len(Keys))
	for _, k := range Keys {
		attrs = append(attrs, slog.Any(k.Name, k.Value(r)))
	}
	return slog.GroupValue(attrs...)
}
