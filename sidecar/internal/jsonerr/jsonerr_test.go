package jsonerr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

type inner struct {
	TTL   int64   `json:"ttl"`
	Count uint    `json:"count"`
	Ratio float64 `json:"ratio"`
	On    bool    `json:"on"`
}

type outer struct {
	Name     string            `json:"name"`
	Messages []inner           `json:"messages"`
	Labels   map[string]string `json:"labels"`
	Raw      []byte            `json:"raw"`
}

// Every decode error reads as a sentence about the JSON: the field and
// what it must be, never a Go type, struct or package name.
func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in    string
		strict      bool
		kind, field string
		message     string
	}{
		{"string for integer", `{"messages":[{"ttl":"x"}]}`, false, KindType, "messages.ttl", "messages.ttl must be an integer, not a string"},
		{"number out of range", `{"messages":[{"ttl":1e999}]}`, false, KindType, "messages.ttl", "messages.ttl must be an integer within range, not 1e999"},
		{"negative for unsigned", `{"messages":[{"count":-1}]}`, false, KindType, "messages.count", "messages.count must be a non-negative integer within range, not -1"},
		{"string for array", `{"messages":"x"}`, false, KindType, "messages", "messages must be an array, not a string"},
		{"number for object", `{"messages":[1]}`, false, KindType, "messages", "messages must be an object, not a number"},
		{"array for map", `{"labels":[]}`, false, KindType, "labels", "labels must be an object, not an array"},
		{"bool for string", `{"name":true}`, false, KindType, "name", "name must be a string, not a boolean"},
		{"object for bool", `{"messages":[{"on":{}}]}`, false, KindType, "messages.on", "messages.on must be a boolean, not an object"},
		{"number for bytes", `{"raw":1}`, false, KindType, "raw", "raw must be a base64 string, not a number"},
		{"array for the body", `[1]`, false, KindType, "", "the body must be an object, not an array"},
		{"syntax", `{"name":}`, false, KindSyntax, "", "malformed JSON at byte 9: invalid character '}' looking for beginning of value"},
		{"cut short", `{"name":"x"`, false, KindSyntax, "", "malformed JSON: unexpected end of input"},
		{"unknown field", `{"nope":1}`, true, KindUnknownField, "nope", `unknown field "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v outer
			dec := json.NewDecoder(bytes.NewReader([]byte(tt.in)))
			if tt.strict {
				dec.DisallowUnknownFields()
			}
			err := dec.Decode(&v)
			if err == nil {
				t.Fatal("decoded")
			}
			p := Describe(err)
			if p.Kind != tt.kind || p.Field != tt.field || p.Message != tt.message {
				t.Fatalf("got %+v, want kind %s field %q message %q", p, tt.kind, tt.field, tt.message)
			}
			for _, leak := range []string{"Go ", "struct", "jsonerr", "int64", "inner", "outer", "[]"} {
				if strings.Contains(p.Message, leak) {
					t.Fatalf("message %q names Go (%q)", p.Message, leak)
				}
			}
		})
	}
}
