package stream_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

func TestPruneOnceUsesStreamBounds(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	h := newHub(t, store)
	a := open(t, h, "a", stream.Config{Persist: true, RingSize: 8, MaxEvents: 10, MaxAge: time.Hour})
	open(t, h, "b", stream.Config{Persist: true})
	open(t, h, "c", stream.Config{MaxEvents: 10, MaxAge: time.Hour})
	open(t, h, "d", stream.Config{Persist: true, MaxAge: time.Minute})
	publish(t, a, 1, 30)

	before := time.Now()
	if err := h.PruneOnce(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	calls := map[string]memstore.PruneCall{}
	for _, c := range store.Prunes() {
		calls[c.Stream] = c
	}
	if len(calls) != 2 {
		t.Fatalf("pruned %v, want a and d only (persisted, bounded)", calls)
	}
	for name, want := range map[string]struct {
		keep int
		age  time.Duration
	}{"a": {10, time.Hour}, "d": {0, time.Minute}} {
		c := calls[name]
		if c.Keep != want.keep || c.OlderThan.Before(before.Add(-want.age)) || c.OlderThan.After(after.Add(-want.age)) {
			t.Fatalf("prune %s: %+v, want keep %d and olderThan now-%v", name, c, want.keep, want.age)
		}
	}
	// The ring still serves the newest; history kept only 21..30.
	sub := a.Subscribe(stream.After(0))
	defer sub.Close()
	got := readN(t, sub, 11)
	wantGap(t, got[0], 1, 20)
	wantRange(t, got[1:], 21, 30, 0)
}

func TestPruneLoopRuns(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	h := stream.NewHub(store, discard(), stream.HubOptions{PruneInterval: time.Millisecond})
	defer func() {
		if err := h.Close(ctxT(t)); err != nil {
			t.Error(err)
		}
	}()
	open(t, h, "a", stream.Config{Persist: true, MaxEvents: 5})
	deadline := time.Now().Add(guard)
	for len(store.Prunes()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background pruner never pruned")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHubOpenGetRemove(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	h := newHub(t, store)
	var wg sync.WaitGroup
	got := make([]*stream.Stream, 8)
	for i := range got {
		wg.Go(func() { got[i] = open(t, h, "x", stream.Config{Persist: true}) })
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] {
			t.Fatal("concurrent Open of one name returned different streams")
		}
	}
	open(t, h, "a", stream.Config{})
	if names := h.Names(); len(names) != 2 || names[0] != "a" || names[1] != "x" {
		t.Fatalf("names %v, want [a x]", names)
	}
	if s, ok := h.Get("x"); !ok || s != got[0] || s.Name() != "x" || !s.Config().Persist {
		t.Fatal("Get does not return the open stream")
	}
	publish(t, got[0], 1, 3)
	if p := got[0].Published(); p != 3 {
		t.Fatalf("published %d, want 3", p)
	}

	if err := h.Remove(ctxT(t), "a", false); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(ctxT(t), "x", true); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Get("x"); ok {
		t.Fatal("removed stream still held")
	}
	if head, _ := store.Head(ctxT(t), "x"); head != 0 {
		t.Fatalf("purged head %d, want 0", head)
	}
	if evs, _ := store.ReadAfter(ctxT(t), "x", 0, 10); len(evs) != 0 {
		t.Fatalf("purged history still holds %v", seqs(evs))
	}
	if err := h.Remove(ctxT(t), "never-opened", false); err != nil {
		t.Fatalf("remove of an unknown stream: %v", err)
	}
}
