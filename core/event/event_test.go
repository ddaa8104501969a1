package event_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))

func TestJSONEnvelopeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, e := range []*event.Event{
		{Stream: "s1", Seq: 7, Type: "tick", Time: t0, Data: []byte(`{"n":1}`)},
		{Stream: `q"u\o<te>&`, Seq: 1 << 63, Type: "tab\there", Time: t0, Data: []byte(`"x"`)},
		{Stream: "ünï©ode", Seq: 0, Type: "\x01ctl", Time: time.Time{}, Data: []byte(`[1, 2 ,3]`)},
		{Stream: "no-data", Seq: 3, Type: "t", Time: t0},
	} {
		got := e.JSON()
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		data := e.Data
		if len(data) == 0 {
			data = []byte("null")
		}
		want, err := json.Marshal(map[string]any{"stream": e.Stream, "seq": e.Seq, "type": e.Type, "time": e.Time.UTC(), "data": json.RawMessage(data)})
		if err != nil {
			t.Fatal(err)
		}
		if !sameValue(t, got, want) {
			t.Fatalf("envelope %s\nencoding/json: %s", got, want)
		}
		var back struct{ Time time.Time }
		if err := json.Unmarshal(got, &back); err != nil || !back.Time.Equal(e.Time) {
			t.Fatalf("time %v (%v), want %v", back.Time, err, e.Time)
		}
		if app := e.AppendJSON([]byte("prefix")); string(app) != "prefix"+string(got) {
			t.Fatalf("AppendJSON %s, want prefix + JSON()", app)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var ca, cb bytes.Buffer
	if err := json.Compact(&ca, a); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&cb, b); err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// sameValue reports whether a and b are the same JSON value, whatever the
// order of object members (numbers compared as written).
func sameValue(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	for _, p := range []struct {
		raw []byte
		v   *any
	}{{a, &va}, {b, &vb}} {
		dec := json.NewDecoder(bytes.NewReader(p.raw))
		dec.UseNumber()
		if err := dec.Decode(p.v); err != nil {
			t.Fatalf("%s: %v", p.raw, err)
		}
	}
	return reflect.DeepEqual(va, vb)
}

// Every subscriber gets the same bytes: each encoding is computed once,
// the SSE frame by the one encoder the transport passes.
func TestEncodingsComputedOnce(t *testing.T) {
	t.Parallel()
	e := &event.Event{Stream: "s", Seq: 1, Type: "t", Time: t0, Data: []byte(`{}`)}
	var calls atomic.Int32
	encode := func(e *event.Event) []byte { calls.Add(1); return []byte("frame " + e.Type) }
	done := make(chan [2][]byte, 8)
	for range 8 {
		go func() { done <- [2][]byte{e.SSE(encode), e.JSON()} }()
	}
	first := <-done
	for range 7 {
		got := <-done
		if &got[0][0] != &first[0][0] || &got[1][0] != &first[1][0] {
			t.Fatal("SSE or JSON encoded more than once")
		}
	}
	if calls.Load() != 1 || string(first[0]) != "frame t" {
		t.Fatalf("encoder called %d times, frame %q", calls.Load(), first[0])
	}
}

func TestGap(t *testing.T) {
	t.Parallel()
	g := event.Gap("s", 5, 9)
	var d struct{ From, To uint64 }
	if err := json.Unmarshal(g.Data, &d); err != nil || d.From != 5 || d.To != 9 {
		t.Fatalf("gap data %s: %v", g.Data, err)
	}
	if !g.IsGap() || g.Type != event.TypeGap || g.Seq != 9 || g.Stream != "s" || g.Time.IsZero() {
		t.Fatalf("gap %+v", g)
	}
	if (&event.Event{Type: "tick"}).IsGap() {
		t.Fatal("a tick is not a gap")
	}
}

func TestOffline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason string
		seq    uint64
	}{{"node n2 unreachable", 7}, {`quote " and \ newline` + "\n", 0}} {
		o := event.Offline("s", tc.seq, tc.reason)
		var d struct{ Reason string }
		if err := json.Unmarshal(o.Data, &d); err != nil || d.Reason != tc.reason {
			t.Fatalf("offline data %s: %v", o.Data, err)
		}
		if o.Type != event.TypeOffline || o.Seq != tc.seq || o.Stream != "s" || o.IsGap() || !o.IsControl() {
			t.Fatalf("offline %+v", o)
		}
		if want := `,"type":"offline",`; !strings.Contains(string(o.JSON()), want) {
			t.Fatalf("envelope %s, want %s", o.JSON(), want)
		}
	}
	if !event.Gap("s", 1, 2).IsControl() || (&event.Event{Type: "tick"}).IsControl() {
		t.Fatal("IsControl: a gap is a control event, a tick is not")
	}
}

// FuzzEncoders: the envelope of any event reads back with encoding/json.
func FuzzEncoders(f *testing.F) {
	f.Add(uint64(1), "tick", "s", []byte(`{"n":1}`))
	f.Add(uint64(0), "a\nb", "", []byte("{\n\"a\":\r\n[1,\n\n2]}"))
	f.Add(uint64(1<<64-1), "\r", "ü\"", []byte(`"\n"`))
	f.Add(uint64(9), "t", "s", []byte("not json\n\n"))
	f.Fuzz(func(t *testing.T, seq uint64, typ, name string, data []byte) {
		e := &event.Event{Stream: name, Seq: seq, Type: typ, Time: t0, Data: data}
		if !json.Valid(data) {
			return
		}
		var back struct {
			Seq  uint64
			Type string
			Data json.RawMessage
		}
		if err := json.Unmarshal(e.JSON(), &back); err != nil {
			t.Fatalf("envelope %q: %v", e.JSON(), err)
		}
		if back.Seq != seq || back.Type != viaEncodingJSON(typ) || !jsonEqual(t, back.Data, data) {
			t.Fatalf("envelope %q reads back as %+v", e.JSON(), back)
		}
	})
}

// viaEncodingJSON is s as encoding/json round-trips it (invalid UTF-8
// becomes U+FFFD).
func viaEncodingJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// An event survives its envelope encoding: what one node sends another
// reads back whole, inside a larger JSON document.
func TestEventJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := []*event.Event{
		{Stream: "em-1", Seq: 7, Type: "log", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Data: json.RawMessage(`{"line":"a\nb \"q\""}`)},
		event.Gap("em-1", 8, 9),
	}
	b, err := json.Marshal(struct{ Events []*event.Event }{in})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Events []*event.Event }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if string(out.Events[i].JSON()) != string(in[i].JSON()) {
			t.Fatalf("event %d: %s != %s", i, out.Events[i].JSON(), in[i].JSON())
		}
	}
}

// TestVerdictJudgedOncePerJudge: every caller gets the one judgment of
// its judge, beyond the inline slots too.
func TestVerdictJudgedOncePerJudge(t *testing.T) {
	t.Parallel()
	e := &event.Event{Stream: "s", Seq: 1, Type: "x"}
	judged := make([]atomic.Int32, 40)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range uint64(len(judged)) {
				got := e.Verdict(id+1, func(*event.Event) bool { judged[id].Add(1); return id%2 == 0 })
				if got != (id%2 == 0) {
					t.Errorf("judge %d: %v", id+1, got)
				}
			}
		})
	}
	wg.Wait()
	for id := range judged {
		if n := judged[id].Load(); n != 1 {
			t.Errorf("judge %d judged %d times, want 1", id+1, n)
		}
	}
}
