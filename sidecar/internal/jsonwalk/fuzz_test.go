package jsonwalk_test

import (
	"encoding/json"
	"testing"

	"github.com/sidestream/sidestream/sidecar/internal/jsonwalk"
)

// FuzzWalker: on any object encoding/json accepts, a walk that ends
// cleanly saw the members encoding/json sees, each value byte for byte
// (for plain keys; the last of a repeated key wins in both).
func FuzzWalker(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":"x\"}","c":[1,{"d":null}],"e":{"f":[]}}`, ` { "a" : [ ] , "a" : true } `,
		`{"k\u0041":1}`, `{"a":"\xff"}`, `[1,2]`, `{"a":1e3,"b":-0.5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(in, &want) != nil {
			return // the walker only ever sees what json.Valid accepted
		}
		got := map[string]string{}
		w := jsonwalk.Object(in)
		for w.Next() {
			if w.KeyEsc {
				return // escaped keys are left to encoding/json
			}
			got[string(w.Key)] = string(w.Val)
		}
		if !w.Done() {
			if w.Err() == nil {
				t.Fatalf("walk of %q neither done nor failed", in)
			}
			return
		}
		if len(got) != len(want) {
			t.Fatalf("walk of %q: %d members, encoding/json %d", in, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != string(v) {
				t.Fatalf("walk of %q: %s = %s, encoding/json %s", in, k, got[k], v)
			}
		}
	})
}
