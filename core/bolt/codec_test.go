package bolt

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

func TestValueRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []*event.Event{
		{Type: "tick", Time: t0, Data: []byte(`{"a":1}`)},
		{Type: "", Time: time.Time{}, Data: nil},
		{Type: string(bytes.Repeat([]byte("x"), 300)), Time: time.Unix(0, 1), Data: []byte(`"s"`)},
		{Type: "far", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Data: []byte(`null`)},
	}
	for _, e := range cases {
		v := make([]byte, valueSize(e))
		putValue(v, e)
		typ, nano, data, err := decodeValue(v)
		if err != nil {
			t.Fatalf("decode(%q): %v", e.Type, err)
		}
		if string(typ) != e.Type || !bytes.Equal(data, e.Data) {
			t.Fatalf("round trip %q/%q -> %q/%q", e.Type, e.Data, typ, data)
		}
		got := nanoToTime(nano)
		switch {
		case e.Time.IsZero():
			if !got.IsZero() {
				t.Fatalf("zero time decoded as %v", got)
			}
		case e.Time.Year() > 2262:
			if nano != math.MaxInt64 {
				t.Fatalf("far time not clamped: %d", nano)
			}
		case !got.Equal(e.Time):
			t.Fatalf("time %v decoded as %v", e.Time, got)
		}
	}
}

func FuzzDecodeValue(f *testing.F) {
	e := event.Event{Type: "tick", Time: t0, Data: []byte(`{"n":1}`)}
	v := make([]byte, valueSize(&e))
	putValue(v, &e)
	f.Add(v)
	f.Add([]byte{})
	f.Add([]byte{valueV1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		typ, nano, data, err := decodeValue(v)
		if err != nil {
			return
		}
		// Whatever decodes must survive a re-encode with the same parts
		// (bytes may differ: non-canonical varints re-encode shorter).
		e := &event.Event{Type: string(typ), Time: nanoToTime(nano), Data: data}
		out := make([]byte, valueSize(e))
		putValue(out, e)
		t2, n2, d2, err := decodeValue(out)
		if err != nil || !bytes.Equal(t2, typ) || !bytes.Equal(d2, data) {
			t.Fatalf("re-encode of %x gave %x (%v)", v, out, err)
		}
		if n2 != nano && nano > math.MinInt64+1 {
			t.Fatalf("time %d re-encoded as %d", nano, n2)
		}
	})
}
