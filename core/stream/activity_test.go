package stream_test

import (
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// Activity reports the head, the newest event's time and the rate over
// the window, counting only what the window (or a full ring) covers.
func TestActivity(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// stamped returns n drafts spaced by step, the newest at newest.
	stamped := func(n int, step time.Duration, newest time.Time) []event.Draft {
		d := drafts(0, n)
		for i := range d {
			d[i].Time = newest.Add(-time.Duration(n-1-i) * step)
		}
		return d
	}
	tests := []struct {
		name     string
		ring     int
		drafts   []event.Draft
		wantRate float64
		wantLast time.Time
	}{
		{"empty", 0, nil, 0, time.Time{}},
		// 20 events over the last 19 s at 1/s: 10 fall in the 10 s window.
		{"window", 0, stamped(20, time.Second, now.Add(-time.Second)), 1, now.Add(-time.Second)},
		// All older than the window: no rate, but the last time is known.
		{"idle", 0, stamped(3, time.Second, now.Add(-time.Minute)), 0, now.Add(-time.Minute)},
		// A full ring of 8 covering 0.8 s of a 100/s stream: the rate over
		// what the ring holds (100/s), not 8 events per 10 s.
		// A stream begun 4 s ago at 2/s: 2/s, not 8 events per 10 s.
		{"young", 0, stamped(8, 500*time.Millisecond, now.Add(-500*time.Millisecond)), 2, now.Add(-500 * time.Millisecond)},
		// One event a moment ago is not a burst: over the window.
		{"one fresh", 0, stamped(1, time.Second, now.Add(-100*time.Millisecond)), 0.1, now.Add(-100 * time.Millisecond)},
		{"full ring", 8, stamped(50, 10*time.Millisecond, now.Add(-10*time.Millisecond)), 100, now.Add(-10 * time.Millisecond)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, memstore.New())
			s := open(t, h, "s", stream.Config{RingSize: tc.ring})
			if len(tc.drafts) > 0 {
				if _, err := s.Publish(ctxT(t), tc.drafts, nil); err != nil {
					t.Fatal(err)
				}
			}
			a := s.Activity(now, 10*time.Second)
			if a.Head != uint64(len(tc.drafts)) {
				t.Errorf("head %d, want %d", a.Head, len(tc.drafts))
			}
			if !a.Last.Equal(tc.wantLast) {
				t.Errorf("last %v, want %v", a.Last, tc.wantLast)
			}
			if a.PerSec < tc.wantRate*0.99 || a.PerSec > tc.wantRate*1.01+1e-9 {
				t.Errorf("rate %.3f/s, want %.3f/s", a.PerSec, tc.wantRate)
			}
			if got, ok := h.Peek("s"); !ok || got != s {
				t.Error("Peek does not find the open stream")
			}
			if _, ok := h.Peek("nope"); ok {
				t.Error("Peek finds a stream never opened")
			}
		})
	}
}
