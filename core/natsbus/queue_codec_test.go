package natsbus

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestLogCodecRoundTrip: every field of every kind of op survives the
// log encoding, several ops to an entry.
func TestLogCodecRoundTrip(t *testing.T) {
	t.Parallel()
	ops := []op{
		{Kind: opCreateQueue, Tenant: "t", Queue: "q", Meta: json.RawMessage(`{"a":1}`)},
		{Kind: opPost, Tenant: "tenant/ü", Queue: "q-1", Now: -5, Client: "3381af92-2b9e-11e3-b191-71861300734c",
			Msgs: []logMsg{{Body: json.RawMessage(`{"x": [1, 2]}`), TTL: 3600e9}, {Body: json.RawMessage(`"\u0000"`), TTL: 1}}},
		{Kind: opDelete, Tenant: "t", Queue: "q", Now: 1 << 62, IDs: []string{"0000000000000001", ""}, Claims: []string{"c"}},
		{Kind: opClaim, Tenant: "t", Queue: "q", Now: 7, Claim: "id", TTL: 60e9, Grace: 0, Limit: 100},
		{Kind: opExpire, Now: 9},
	}
	raw := make([][]byte, len(ops))
	for i := range ops {
		raw[i] = appendOp(nil, &ops[i])
	}
	e, err := decodeEntry(appendEntry(nil, "inst", 42, raw))
	if err != nil {
		t.Fatal(err)
	}
	if e.Inst != "inst" || e.Batch != 42 || !reflect.DeepEqual(e.Ops, ops) {
		t.Fatalf("decoded %+v\nwant ops %+v", e, ops)
	}
}

// FuzzDecodeEntry: no input makes decoding panic, and every entry that
// decodes encodes back to the same ops.
func FuzzDecodeEntry(f *testing.F) {
	o := op{Kind: opPost, Tenant: "t", Queue: "q", Msgs: []logMsg{{Body: []byte("1"), TTL: 1}}}
	f.Add(appendEntry(nil, "i", 1, [][]byte{appendOp(nil, &o)}))
	f.Add([]byte{logV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		raw := make([][]byte, len(e.Ops))
		for i := range e.Ops {
			raw[i] = appendOp(nil, &e.Ops[i])
		}
		again, err := decodeEntry(appendEntry(nil, e.Inst, e.Batch, raw))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encoded entry decodes to %+v, %v; want %+v", again, err, e)
		}
	})
}
