package queueapi

import (
	"encoding/json"
	"reflect"
	"testing"
)

// walkCases are frames and bodies the walkers must read exactly as
// encoding/json does, or hand over to it.
var walkCases = []string{
	`{"action":"message_post","headers":{"Request-ID":"7","Client-ID":"c"},"body":{"queue_name":"q","messages":[{"ttl":300,"body":{"a":[1,"}\"]"]}},{"body":"x"}]}}`,
	`{"action":"message_delete_many","headers":{"Request-ID":"8"},"body":{"queue_name":"q","message_ids":["a","b"],"claim_ids":["c"]}}`,
	`{"action":"message_delete_many","body":{"queue_name":"q","pop":3}}`,
	`{"action":"message_delete_many","body":{"queue_name":"q","pop":1e3}}`,
	`{"action":"message_delete_many","body":{"queue_name":"q","pop":99999999999999999999}}`,
	`{"action":"message_delete_many","body":{"queue_name":"q","message_ids":null,"claim_id":"c","message_id":"m"}}`,
	`{"action":"message_delete_many","body":{"queue_name":"q","message_ids":["a",1]}}`,
	`{"action":"message_post","body":{"Queue_Name":"q","messages":[{"body":1}]}}`,
	`{"action":"message_post","body":{"queue_name":"q\u0041","messages":[{"body":1}]}}`,
	`{"action":"message_post","body":{"queue_name":"q","messages":[{"TTL":5,"body":1}]}}`,
	`{"action":"message_post","body":{"queue_name":"q","messages":[{"ttl":5.5,"body":1}]}}`,
	`{"action":"message_post","body":{"queue_name":"q","messages":[{"ttl":null,"body":null}, null]}}`,
	`{"action":"message_post","body":{"queue_name":"q","messages":[{"ttl":1,"ttl":2,"body":1}]}}`,
	`{"action":"message_post","body":{"queue_name":"q","messages":[],"messages":[{"body":2}]}}`,
	`{"action":"message_post","body":{"queue_name":"q","messages":{"body":1}}}`,
	`{"action":"message_post","body":{"queue_name":"q","extra":{"x":[]},"messages":[{"body":{},"other":1}]}}`,
	` { "action" : "x" , "headers" : { "a" : "b" } , "body" : { } } `,
	`{"action":"x","action":"y"}`,
	`{"action":"x","headers":{"a":"1"},"headers":{"b":"2"}}`,
	`{"action":"x","headers":{"a":"1","a":"2"}}`,
	`{"Action":"x"}`, `{"act\u0069on":"x"}`, `{"action":"\u0078"}`, `{"action":null}`, `{"action":1}`,
	`{"action":"x","headers":null,"body":null}`, `{"action":"x","headers":[],"body":[1]}`,
	`{"action":"x","headers":{"a":1,"b":{"c":"d"}}}`, `{}`, `{"x":{"action":"y"}}`,
	`{"action":"x","headers":{"a":"1","b":"2","c":"3","d":"4","e":"5"}}`,
	`{"action":"x","headers":{"a":"\u0041","A":"b"}}`,
}

func TestWalkFrameAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range walkCases {
		checkWalkFrame(t, []byte(s))
	}
	// The hot frames must take the walk, not the fallback.
	for _, s := range walkCases[:3] {
		var f frame
		var p1 postParams
		var p2 idsParams
		if !walkFrame([]byte(s), &f) || !(walkParams(f.Body, &p1) || walkParams(f.Body, &p2)) {
			t.Fatalf("%s: not walked", s)
		}
	}
}

func checkWalkFrame(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return
	}
	var fast, slow frame
	if walkFrame(data, &fast) {
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("%s: walked, but encoding/json refuses it: %v", data, err)
		}
		if fast.Action != slow.Action || !sameRaw(fast.Body, slow.Body) || fast.Headers != nil || fast.nWalked != len(slow.Headers) {
			t.Fatalf("%s: walked %+v, encoding/json %+v", data, fast, slow)
		}
		for k, v := range slow.Headers {
			if got := fast.walkedHeader(k); !sameRaw(got, v) {
				t.Fatalf("%s: header %q walked %s, encoding/json %s", data, k, got, v)
			}
			if fast.header(k) != slow.header(k) {
				t.Fatalf("%s: header %q walked %q, encoding/json %q", data, k, fast.header(k), slow.header(k))
			}
		}
	}
	var body json.RawMessage
	if err := json.Unmarshal(data, &struct {
		Body *json.RawMessage `json:"body"`
	}{&body}); err != nil || len(body) == 0 || body[0] != '{' {
		return
	}
	for _, pair := range [][2]any{{&postParams{}, &postParams{}}, {&idsParams{}, &idsParams{}}} {
		if !walkParams(body, pair[0]) {
			if !reflect.ValueOf(pair[0]).Elem().IsZero() {
				t.Fatalf("%s: a refused walk left %+v behind", body, pair[0])
			}
			continue
		}
		if err := json.Unmarshal(body, pair[1]); err != nil {
			t.Fatalf("%s: walked into %T, but encoding/json refuses it: %v", body, pair[0], err)
		}
		if !reflect.DeepEqual(normRaw(pair[0]), normRaw(pair[1])) {
			t.Fatalf("%s: walked %+v, encoding/json %+v", body, pair[0], pair[1])
		}
	}
}

// walkedHeader is the value walkFrame read for the header named
// exactly name.
func (f *frame) walkedHeader(name string) json.RawMessage {
	for _, h := range f.walked[:f.nWalked] {
		if string(h.name) == name {
			return h.val
		}
	}
	return nil
}

// normRaw re-encodes params so raw bodies compare by bytes, not by how
// they were sliced.
func normRaw(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sameRaw(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) == 0 || string(a) == "null" || string(b) == "null"
	}
	return string(a) == string(b)
}

func FuzzWalkFrame(f *testing.F) {
	for _, s := range walkCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWalkFrame(t, data)
	})
}
