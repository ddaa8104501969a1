package sdk

import "testing"

// The schema's failures read as what the field must be, never as the
// keyword that failed.
func TestSchemaErrorsAreSentences(t *testing.T) {
	t.Parallel()
	s := compileSchema([]byte(`{"type":"object","properties":{
	  "rate":{"type":"number","exclusiveMinimum":0,"maximum":100000},
	  "n":{"type":"integer","minimum":1},
	  "name":{"type":"string","minLength":2,"pattern":"^[a-z]+$"},
	  "mode":{"enum":["a","b"]},
	  "tags":{"type":"array","maxItems":1}}}`))
	tests := []struct{ config, field, want string }{
		{`{"rate":0}`, "rate", "must be > 0"},
		{`{"rate":100001}`, "rate", "must be at most 100000"},
		{`{"rate":1e6}`, "rate", "must be at most 100000"},
		{`{"n":0}`, "n", "must be at least 1"},
		{`{"n":"x"}`, "n", "must be of type integer, not string"},
		{`{"name":"a"}`, "name", "must be at least 2 characters long"},
		{`{"name":"AB"}`, "name", `must match the pattern "^[a-z]+$"`},
		{`{"mode":"c"}`, "mode", "must be one of 'a', 'b'"},
		{`{"tags":[1,2]}`, "tags", "must have at most 1 items"},
	}
	for _, tt := range tests {
		fields, err := s.validate([]byte(tt.config))
		if err != nil || len(fields) != 1 || fields[0].Field != tt.field || fields[0].Message != tt.want {
			t.Errorf("%s: %+v (%v), want %s %q", tt.config, fields, err, tt.field, tt.want)
		}
	}
}
