// Package jsonerr turns encoding/json's decode errors into plain
// sentences for API clients: which field is wrong and what it must be,
// never a Go type or struct name. The HTTP API and the queue API both
// answer with it, so one body reads the same everywhere.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Kinds of problems.
const (
	KindType         = "type"          // a value of the wrong JSON type, or a number out of range
	KindSyntax       = "syntax"        // not JSON
	KindUnknownField = "unknown_field" // a field the target does not have (DisallowUnknownFields)
	KindOther        = "other"         // anything else a decoder reported
)

// Problem is one decode error, described.
type Problem struct {
	Kind string
	// Field is the dotted JSON path of the value ("messages.ttl"), empty
	// for the whole body.
	Field string
	// Detail says what is wrong with Field ("must be an integer, not a
	// string"); Message is the whole sentence, with the field.
	Detail, Message string
}

// Describe describes err, an error of json.Unmarshal or a json.Decoder.
func Describe(err error) Problem {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &te):
		return typeProblem(te)
	case errors.As(err, &se):
		return Problem{Kind: KindSyntax, Message: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Problem{Kind: KindSyntax, Message: "malformed JSON: unexpected end of input"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return Problem{Kind: KindUnknownField, Field: name, Detail: "unknown field", Message: fmt.Sprintf("unknown field %q", name)}
	}
	// Errors of a type's own UnmarshalJSON say what they like; what
	// encoding/json itself says past here names Go types.
	return Problem{Kind: KindOther, Message: "the JSON does not have the shape this request takes"}
}

func typeProblem(te *json.UnmarshalTypeError) Problem {
	want := typeName(te.Type)
	got, isNumber := valueName(te.Value)
	detail := fmt.Sprintf("must be %s, not %s", want, got)
	if isNumber && (strings.HasSuffix(want, "integer") || want == "a number") {
		detail = fmt.Sprintf("must be %s within range, not %s", want, strings.TrimPrefix(te.Value, "number "))
	}
	p := Problem{Kind: KindType, Field: te.Field, Detail: detail}
	if te.Field == "" {
		p.Message = "the body " + detail
	} else {
		p.Message = te.Field + " " + detail
	}
	return p
}

// typeName is what a value of Go type t is in JSON.
func typeName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if strings.HasPrefix(t.Kind().String(), "uint") {
			return "a non-negative integer"
		}
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	}
	return "a JSON value"
}

// valueName names the JSON value encoding/json reports ("string",
// "number 1e999", "object", …); isNumber reports a number.
func valueName(v string) (name string, isNumber bool) {
	switch {
	case v == "number" || strings.HasPrefix(v, "number "):
		return "a number", true
	case v == "string":
		return "a string", false
	case v == "bool":
		return "a boolean", false
	case v == "object":
		return "an object", false
	case v == "array":
		return "an array", false
	}
	return v, false
}
