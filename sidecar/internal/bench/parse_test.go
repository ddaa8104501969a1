package bench

import (
	"sync/atomic"
	"testing"
	"time"
)

// The stamp table gives back what was stored for a seq, to the µs, and
// nothing for a seq it does not hold: another seq in the same slot, a
// time before its base or beyond what a slot holds, a nil table.
func TestStampTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	tab := newStampTable(now)
	at := now.Add(1234567891 * time.Nanosecond).UnixNano()
	tab.store(7, at)
	if ns, ok := tab.lookup(7); !ok || ns != at-(at-tab.base)%1000 {
		t.Fatalf("lookup(7) = %d, %v; want %d to the µs", ns, ok, at)
	}
	if _, ok := tab.lookup(8); ok {
		t.Fatal("lookup(8): found a seq never stored")
	}
	if _, ok := tab.lookup(7 + stampSlots); ok {
		t.Fatal("a seq in the same slot took the other's time")
	}
	tab.store(7+stampSlots, at+5000)
	if ns, ok := tab.lookup(7 + stampSlots); !ok || ns != at-(at-tab.base)%1000+5000 {
		t.Fatalf("lookup after the slot was reused = %d, %v", ns, ok)
	}
	if _, ok := tab.lookup(7); ok {
		t.Fatal("the slot's old seq still found")
	}
	tab.store(9, tab.base-1)
	tab.store(10, tab.base+int64(stampUSMask)*1000+1000)
	for _, seq := range []uint64{9, 10} {
		if _, ok := tab.lookup(seq); ok {
			t.Errorf("seq %d: a time the table cannot hold was shared", seq)
		}
	}
	var none *stampTable
	none.store(1, at)
	if _, ok := none.lookup(1); ok {
		t.Fatal("a nil table shared a time")
	}
}

// Subscribers sharing a table record the same latencies as subscribers
// parsing their own: the first parses an event's time and shares it.
func TestConsumersShareStamps(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tab := newStampTable(now)
	var ops atomic.Int64
	e := &env{}
	lone := &consumer{e: e, ops: &ops, h: &latencies{}}
	shared := []*consumer{{e: e, ops: &ops, h: &latencies{}, shared: tab}, {e: e, ops: &ops, h: &latencies{}, shared: tab}}
	for seq := uint64(1); seq <= 50; seq++ {
		sent := now.Add(time.Duration(seq) * time.Millisecond)
		data := []byte(`{"timestamp":"` + sent.UTC().Format(time.RFC3339Nano) + `"}`)
		d := delivery{seq: seq, data: data, at: sent.Add(3 * time.Millisecond)}
		lone.see(&d, true)
		for _, c := range shared {
			c.see(&d, true)
		}
	}
	for i, c := range shared {
		if len(c.lat) != len(lone.lat) {
			t.Fatalf("consumer %d: %d latencies, want %d", i, len(c.lat), len(lone.lat))
		}
		for k := range c.lat {
			if c.lat[k] != lone.lat[k] {
				t.Fatalf("consumer %d, event %d: latency %d µs, want %d", i, k+1, c.lat[k], lone.lat[k])
			}
		}
	}
	if _, ok := tab.lookup(50); !ok {
		t.Fatal("the table holds no time for the last event")
	}
}
