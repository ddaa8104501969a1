package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaURL names the config schema inside the compiler; it never leaves
// the process (no loader is consulted for it).
const schemaURL = "sidestream:config-schema.json"

var printer = message.NewPrinter(language.English)

// configSchema is a compiled Description.ConfigSchema. A nil schema (none
// declared) accepts every JSON value; err is a schema that did not compile.
type configSchema struct {
	schema *jsonschema.Schema
	err    error
}

func compileSchema(raw []byte) *configSchema {
	if len(bytes.TrimSpace(raw)) == 0 {
		return &configSchema{}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &configSchema{err: fmt.Errorf("parse: %w", err)}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return &configSchema{err: fmt.Errorf("add: %w", err)}
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return &configSchema{err: fmt.Errorf("compile: %w", err)}
	}
	return &configSchema{schema: sch}
}

// validate checks config against the schema and returns one FieldError per
// violation. The error result is for a broken schema only.
func (c *configSchema) validate(config []byte) ([]FieldError, error) {
	if c.err != nil {
		return nil, c.err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(config))
	if err != nil {
		return []FieldError{{Field: "", Message: "config is not valid JSON: " + err.Error()}}, nil
	}
	if c.schema == nil {
		return nil, nil
	}
	err = c.schema.Validate(inst)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldError{{Field: "", Message: err.Error()}}, nil
	}
	fields := flatten(ve, nil)
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
	return dedupe(fields), nil
}

// flatten collects the leaf errors: the causes say what is wrong, the
// parents only that "something below" is.
func flatten(e *jsonschema.ValidationError, out []FieldError) []FieldError {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			out = flatten(c, out)
		}
		return out
	}
	loc := strings.Join(e.InstanceLocation, "/")
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			out = append(out, FieldError{Field: join(loc, name), Message: "is required"})
		}
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			out = append(out, FieldError{Field: join(loc, name), Message: "is not an allowed property"})
		}
	default:
		out = append(out, FieldError{Field: loc, Message: sentence(e.ErrorKind)})
	}
	return out
}

// sentence words a failure as what the field must be ("must be > 0"),
// not as the keyword that failed ("exclusiveMinimum: got 0, want 0"), as
// the messages reach users in 400 answers; kinds it does not know keep
// the library's wording.
func sentence(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Minimum:
		return "must be at least " + number(k.Want)
	case *kind.Maximum:
		return "must be at most " + number(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + number(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + number(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + number(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.Type:
		return fmt.Sprintf("must be of type %s, not %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Pattern:
		return fmt.Sprintf("must match the pattern %q", k.Want)
	}
	return strings.TrimPrefix(k.LocalizedString(printer), "value ")
}

// number writes a schema bound as JSON would, without digit grouping.
func number(r *big.Rat) string {
	if r.IsInt() {
		return r.RatString()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func join(loc, name string) string {
	if loc == "" {
		return name
	}
	return loc + "/" + name
}

func dedupe(fields []FieldError) []FieldError {
	out := fields[:0]
	for _, f := range fields {
		if len(out) > 0 && out[len(out)-1] == f {
			continue
		}
		out = append(out, f)
	}
	return out
}
