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
	if _, ok := walkDelivery([]byte(`{"action":"message_delivery","body":{"claim_id":"c","messages":[{"id":"m","body":1}]}}`)); !ok {
		t.Fatal("a plain delivery was not walked")
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
		if fast.Action != slow.Action || !sameRaw(fast.Body, slow.Body) || len(fast.Headers) != len(slow.Headers) {
			t.Fatalf("%s: walked %+v, encoding/json %+v", data, fast, slow)
		}
		for k, v := range slow.Headers {
			if !sameRaw(fast.Headers[k], v) {
				t.Fatalf("%s: header %q walked %s, encoding/json %s", data, k, fast.Headers[k], v)
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

func TestWalkClientFramesAgreeWithEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []string{
		`{"action":"message_delivery","headers":{"status":200,"subscription_id":"s","queue_name":"q"},"body":{"claim_id":"c","href":"/v2/queues/q/claims/c","queue_name":"q","subscription_id":"s","messages":[{"id":"m1","href":"/h?claim_id=c","ttl":300,"age":0,"body":{"seq":1,"s":"]}\""},"claim_id":"c"},{"id":"m\u0032","href":"h","ttl":1,"age":2,"body":[]}]}}`,
		`{"action":"message_delivery","body":{"claim_id":"c","messages":[]}}`,
		`{"request":{"action":"message_post","headers":{"Request-ID":"12"},"body":{"queue_name":"q","messages":[{"body":"{\"headers\":1}"}]}},"headers":{"status":201},"body":{"message_ids":["a"]}}`,
		`{"request":{"action":"x","headers":{"request-id":"3"}},"headers":{"status":400},"body":{"error":{}}}`,
		`{"request":{"headers":{"Request-ID":5}},"headers":{"status":400},"body":{}}`,
		`{"request":null,"headers":{"status":400},"body":{"error":{"code":"malformed_frame"}}}`,
		`{"request":[1],"headers":{"status":400},"body":{}}`,
	}
	for _, s := range cases {
		data := []byte(s)
		if d, ok := walkDelivery(data); ok {
			var f struct {
				Body Delivery `json:"body"`
			}
			if err := json.Unmarshal(data, &f); err != nil || !reflect.DeepEqual(normRaw(d), normRaw(f.Body)) {
				t.Fatalf("%s: walked %+v, encoding/json %+v (%v)", s, d, f.Body, err)
			}
		}
		id, r, err := decodeReply(data)
		var w wireReply
		if json.Unmarshal(data, &w) != nil {
			continue
		}
		var req struct {
			Headers struct {
				ID any `json:"Request-ID"`
			} `json:"headers"`
		}
		_ = json.Unmarshal(w.Request, &req)
		want, _ := req.Headers.ID.(string)
		if err != nil || id != want || r.Status != w.Headers.Status || !sameRaw(r.Body, w.Body) {
			t.Fatalf("%s: walked id %q %+v (%v), encoding/json id %q %+v", s, id, r, err, want, w)
		}
	}
}

func FuzzWalkFrame(f *testing.F) {
	for _, s := range walkCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWalkFrame(t, data)
		_, _ = walkDelivery(data) // must not panic on anything
		_, _, _ = walkReply(data)
	})
}
