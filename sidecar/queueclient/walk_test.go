package queueclient

import (
	"encoding/json"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

// The walks of the frames the server sends read them exactly as
// encoding/json does, or leave them to it.
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
				Body api.QueueDelivery `json:"body"`
			}
			if err := json.Unmarshal(data, &f); err != nil || !sameEncoding(d, f.Body) {
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
		if err != nil || id != want || r.Status != w.Headers.Status || !sameEncoding(r.Body, w.Body) {
			t.Fatalf("%s: walked id %q %+v (%v), encoding/json id %q %+v", s, id, r, err, want, w)
		}
	}
}

// sameEncoding reports whether a and b encode alike (raw bodies compare
// by their bytes, not by how they were sliced).
func sameEncoding(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

func FuzzWalkServerFrames(f *testing.F) {
	f.Add([]byte(`{"action":"message_delivery","body":{"claim_id":"c","messages":[{"id":"m","body":1}]}}`))
	f.Add([]byte(`{"request":{"headers":{"Request-ID":"5"}},"headers":{"status":201},"body":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = walkDelivery(data) // must not panic on anything
		_, _, _ = walkReply(data)
	})
}

// A plain delivery takes the walk, not the fallback.
func TestPlainDeliveryIsWalked(t *testing.T) {
	t.Parallel()
	if _, ok := walkDelivery([]byte(`{"action":"message_delivery","body":{"claim_id":"c","messages":[{"id":"m","body":1}]}}`)); !ok {
		t.Fatal("a plain delivery was not walked")
	}
}
