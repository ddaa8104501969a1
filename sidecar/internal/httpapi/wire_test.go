package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

// Every JSON answer is exactly its sidecar/api type: it decodes with no
// unknown field, and the type encodes back to the same value, so a field
// the server adds or drops without the type (or the reverse) fails here
// before a client misreads it.
func TestAnswersAreAPITypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"w1","labels":{"guest":"vm-1"},"retention":{"max_age":"2h","max_events":5}}`)
	e.publish("w1", 3)
	_, _, created := e.do("PUT", "/log", `{"rate":5}`)
	var logID api.Created
	if err := json.Unmarshal(created, &logID); err != nil || logID.ID == "" {
		t.Fatalf("PUT /log answered %s", created)
	}
	e.publish(logID.ID, 2)
	tests := []struct {
		method, path, body string
		status             int
		into               any
	}{
		{"GET", "/api/v1/emitters/w1", "", 200, &api.Emitter{}},
		{"GET", "/api/v1/emitters", "", 200, &api.EmitterPage{}},
		{"GET", "/api/v1/emitters?label=guest:vm-1&label=guest:vm-2", "", 200, &api.EmitterPage{}},
		{"GET", "/api/v1/streams/w1/events?limit=2", "", 200, &api.EventPage{}},
		{"GET", "/log/" + logID.ID, "", 200, &api.LogPage{}},
		{"GET", "/log/" + logID.ID + "?before=2", "", 200, &api.LogPage{}},
		{"GET", "/api/v1/plugins", "", 200, &api.Items[api.Plugin]{}},
		{"GET", "/api/v1/kinds", "", 200, &api.Items[api.Kind]{}},
		{"GET", "/fib/next", "", 200, &api.FibState{}},
		{"POST", "/track/ann", `{"x":1}`, 202, &api.Seq{}},
		{"GET", "/healthz", "", 200, &api.Status{}},
		{"POST", "/api/v1/emitters", `{"kind":"log","bogus":1}`, 400, &api.ErrorBody{}},
		{"GET", "/nope", "", 404, &api.ErrorBody{}},
	}
	for _, tt := range tests {
		code, _, body := e.do(tt.method, tt.path, tt.body)
		if code != tt.status {
			t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, code, body, tt.status)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(tt.into); err != nil {
			t.Fatalf("%s %s: %s does not decode as %T: %v", tt.method, tt.path, body, tt.into, err)
		}
		back, err := json.Marshal(tt.into)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, body, back) {
			t.Fatalf("%s %s:\nserver  %s\n%T %s", tt.method, tt.path, body, tt.into, back)
		}
	}
}

// sameJSON reports whether a and b hold the same JSON value, whatever the
// order of object members.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
