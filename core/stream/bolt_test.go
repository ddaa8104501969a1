package stream_test

import (
	"path/filepath"
	"testing"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/stream"
)

// openBolt opens a real bbolt file; it is closed when the test ends
// unless the test closes it first.
func openBolt(t testing.TB, path string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(ctxT(t), path, bolt.Options{}, discard())
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	t.Cleanup(func() { _ = st.Close(ctxT(t)) })
	return st
}

// The key scenarios on the real store, across process-like restarts
// (hub and store closed and reopened on the same file).
func TestOnBolt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s.db")
	persist := stream.Config{Persist: true, RingSize: 16}
	ephemeral := stream.Config{RingSize: 16}

	var lastP, lastE uint64
	for round := range 3 {
		store := openBolt(t, path)
		h := stream.NewHub(store, discard(), stream.HubOptions{})
		p := open(t, h, "p", persist)
		e := open(t, h, "e", ephemeral)
		if p.Head() != lastP {
			t.Fatalf("round %d: persisted head %d, want %d", round, p.Head(), lastP)
		}
		if e.Head() < lastE {
			t.Fatalf("round %d: ephemeral head %d went back below %d", round, e.Head(), lastE)
		}
		if round > 0 {
			// A resume point older than the ring is served from history.
			sub := p.Subscribe(stream.After(3))
			wantRange(t, readN(t, sub, int(lastP-3)), 4, lastP, 0)
			sub.Close()
		}
		sub := p.Subscribe(stream.FromNow())
		for i := range 10 {
			if got := publish(t, p, int(lastP)+1+i*5, 5); got != lastP+uint64(i+1)*5 {
				t.Fatalf("round %d: persisted publish returned %d", round, got)
			}
		}
		// 50 events through a 16-slot ring without reading: history
		// fills in, no loss.
		wantRange(t, readN(t, sub, 50), lastP+1, lastP+50, 0)
		sub.Close()
		lastP += 50

		first := publish(t, e, 0, 1)
		if first <= lastE {
			t.Fatalf("round %d: ephemeral seq %d reused (last %d)", round, first, lastE)
		}
		lastE = publish(t, e, 0, 30)

		wantRange(t, pageForward(t, p, 7), 1, lastP, 0)
		wantRange(t, pageBackward(t, p, 9), 1, lastP, 0)
		if err := h.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := store.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOnBoltPruneAndPurge(t *testing.T) {
	t.Parallel()
	store := openBolt(t, filepath.Join(t.TempDir(), "s.db"))
	h := newHub(t, store)
	s := open(t, h, "p", stream.Config{Persist: true, RingSize: 8, MaxEvents: 20})
	publish(t, s, 1, 100)
	if err := h.PruneOnce(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(stream.After(0))
	got := readN(t, sub, 21)
	sub.Close()
	wantGap(t, got[0], 1, 80)
	wantRange(t, got[1:], 81, 100, 0)

	if err := h.Remove(ctxT(t), "p", true); err != nil {
		t.Fatal(err)
	}
	if head, err := store.Head(ctxT(t), "p"); err != nil || head != 0 {
		t.Fatalf("purged head %d %v", head, err)
	}
}
