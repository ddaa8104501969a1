package logplugin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/sidestream/sidestream/plugins/sdk"
)

const (
	sourceSynthetic = "synthetic"
	sourceFile      = "file"

	defaultRate = 10.0
	maxRate     = 100000.0
	maxGuestLen = 253
	maxPathLen  = 4096
)

// knownLevels are the levels the generator can produce, in the default
// order of a normalized config.
var knownLevels = []string{"INFO", "WARN", "ERROR", "DEBUG"}

// configSchema is the instance config (draft 2020-12). null and {} mean
// the synthetic default. Validate re-checks everything the schema says, so
// the plugin is safe to call without the SDK's schema pass too.
const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "log emitter config",
  "type": ["object", "null"],
  "properties": {
    "source": {"enum": ["synthetic", "file"], "default": "synthetic",
      "description": "synthetic: generated guest log lines; file: tail of a file under the log roots"},
    "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000, "default": 10,
      "description": "synthetic lines per second"},
    "levels": {"type": "array", "minItems": 1, "uniqueItems": true,
      "items": {"enum": ["INFO", "WARN", "ERROR", "DEBUG"]},
      "description": "levels the generator emits (weighted INFO > DEBUG > WARN > ERROR)"},
    "guest": {"type": "string", "maxLength": 253,
      "description": "guest name put on synthetic lines (default: the emitter id)"},
    "path": {"type": "string", "minLength": 1, "maxLength": 4096,
      "description": "absolute path of the file to tail; must lie under a configured log root"}
  },
  "additionalProperties": false,
  "if": {"properties": {"source": {"const": "file"}}, "required": ["source"]},
  "then": {"required": ["path"],
    "properties": {"rate": false, "levels": false, "guest": false}},
  "else": {"properties": {"path": false}}
}`

// cfg is a normalized config; its JSON form is what Validate returns.
type cfg struct {
	Source string   `json:"source"`
	Rate   float64  `json:"rate,omitempty"`
	Levels []string `json:"levels,omitempty"`
	Guest  string   `json:"guest,omitempty"`
	Path   string   `json:"path,omitempty"`
}

// rawCfg tells "absent" from "zero" so defaults and errors are exact.
type rawCfg struct {
	Source *string   `json:"source"`
	Rate   *float64  `json:"rate"`
	Levels *[]string `json:"levels"`
	Guest  *string   `json:"guest"`
	Path   *string   `json:"path"`
}

// parseConfig decodes and normalizes a config. It does not look at the
// file system; path containment is the rootSet's job.
func parseConfig(raw json.RawMessage) (cfg, *sdk.ValidationError) {
	var r rawCfg
	if t := bytes.TrimSpace(raw); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return cfg{}, sdk.Invalid("", "config must be a JSON object with source, rate, levels, guest, path: %v", err)
		}
		if dec.More() {
			return cfg{}, sdk.Invalid("", "config has trailing data")
		}
	}
	var ve sdk.ValidationError
	bad := func(field, format string, args ...any) {
		ve.Fields = append(ve.Fields, sdk.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	c := cfg{Source: sourceSynthetic}
	if r.Source != nil {
		c.Source = *r.Source
	}
	switch c.Source {
	case sourceSynthetic:
		if r.Path != nil {
			bad("path", "only allowed with source \"file\"")
		}
		c.Rate, c.Levels, c.Guest = syntheticFields(r, bad)
	case sourceFile:
		for name, set := range map[string]bool{"rate": r.Rate != nil, "levels": r.Levels != nil, "guest": r.Guest != nil} {
			if set {
				bad(name, "only allowed with source \"synthetic\"")
			}
		}
		if r.Path == nil || *r.Path == "" {
			bad("path", "is required with source \"file\"")
		} else if len(*r.Path) > maxPathLen {
			bad("path", "is longer than %d bytes", maxPathLen)
		} else {
			c.Path = *r.Path
		}
	default:
		bad("source", "must be \"synthetic\" or \"file\", not %q", c.Source)
	}
	if len(ve.Fields) > 0 {
		slices.SortStableFunc(ve.Fields, func(a, b sdk.FieldError) int { return cmp.Compare(a.Field, b.Field) })
		return cfg{}, &ve
	}
	return c, nil
}

func syntheticFields(r rawCfg, bad func(field, format string, args ...any)) (float64, []string, string) {
	rate := defaultRate
	if r.Rate != nil {
		rate = *r.Rate
		if !(rate > 0) || rate > maxRate || math.IsInf(rate, 0) {
			bad("rate", "must be > 0 and <= %d lines per second", int(maxRate))
		}
	}
	levels := slices.Clone(knownLevels)
	if r.Levels != nil {
		levels = *r.Levels
		if len(levels) == 0 {
			bad("levels", "must name at least one level")
		}
		for i, l := range levels {
			if !slices.Contains(knownLevels, l) {
				bad(fmt.Sprintf("levels[%d]", i), "unknown level %q (want one of INFO, WARN, ERROR, DEBUG)", l)
			} else if slices.Index(levels, l) != i {
				bad(fmt.Sprintf("levels[%d]", i), "duplicate level %q", l)
			}
		}
	}
	var guest string
	if r.Guest != nil {
		guest = *r.Guest
		if len(guest) > maxGuestLen {
			bad("guest", "is longer than %d bytes", maxGuestLen)
		}
	}
	return rate, levels, guest
}
