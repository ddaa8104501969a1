package stream_test

import (
	"testing"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// pageForward pages with ReadAfter until an empty page.
func pageForward(t *testing.T, s *stream.Stream, limit int) []*event.Event {
	t.Helper()
	var all []*event.Event
	after := uint64(0)
	for range 1000 {
		page, err := s.ReadAfter(ctxT(t), after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	t.Fatal("ReadAfter never returned an empty page")
	return nil
}

// pageBackward pages with ReadBefore from the newest until an empty page
// and returns everything ascending.
func pageBackward(t *testing.T, s *stream.Stream, limit int) []*event.Event {
	t.Helper()
	var pages [][]*event.Event
	before := uint64(0)
	for range 1000 {
		page, err := s.ReadBefore(ctxT(t), before, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 || before == 1 {
			var all []*event.Event
			for i := len(pages) - 1; i >= 0; i-- {
				all = append(all, pages[i]...)
			}
			return all
		}
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		pages = append(pages, page)
		before = page[0].Seq
	}
	t.Fatal("ReadBefore never returned an empty page")
	return nil
}

func TestPagingAcrossRingAndHistory(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	cfg := stream.Config{Persist: true, RingSize: 16}
	h1 := stream.NewHub(store, discard(), stream.HubOptions{})
	publish(t, open(t, h1, "s", cfg), 1, 60)
	if err := h1.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// After a reopen the ring starts empty; 61..100 go through it and it
	// keeps 85..100, so pages straddle history and ring.
	s := open(t, newHub(t, store), "s", cfg)
	for i := range 8 {
		publish(t, s, 61+i*5, 5)
	}
	for _, limit := range []int{1, 7, 16, 30, 1000} {
		wantRange(t, pageForward(t, s, limit), 1, 100, 0)
		wantRange(t, pageBackward(t, s, limit), 1, 100, 0)
	}
	for _, tc := range []struct {
		name     string
		read     func() ([]*event.Event, error)
		from, to uint64
	}{
		{"after in ring", func() ([]*event.Event, error) { return s.ReadAfter(ctxT(t), 90, 5) }, 91, 95},
		{"after straddles", func() ([]*event.Event, error) { return s.ReadAfter(ctxT(t), 80, 10) }, 81, 90},
		{"before in ring", func() ([]*event.Event, error) { return s.ReadBefore(ctxT(t), 95, 3) }, 92, 94},
		{"before straddles", func() ([]*event.Event, error) { return s.ReadBefore(ctxT(t), 90, 10) }, 80, 89},
		{"newest", func() ([]*event.Event, error) { return s.ReadBefore(ctxT(t), 0, 4) }, 97, 100},
		{"before beyond head", func() ([]*event.Event, error) { return s.ReadBefore(ctxT(t), 500, 2) }, 99, 100},
	} {
		evs, err := tc.read()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		wantRange(t, evs, tc.from, tc.to, 0)
	}
	for _, read := range []func() ([]*event.Event, error){
		func() ([]*event.Event, error) { return s.ReadAfter(ctxT(t), 100, 10) },
		func() ([]*event.Event, error) { return s.ReadAfter(ctxT(t), 0, 0) },
		func() ([]*event.Event, error) { return s.ReadBefore(ctxT(t), 1, 10) },
		func() ([]*event.Event, error) { return s.ReadBefore(ctxT(t), 0, -1) },
	} {
		if evs, err := read(); err != nil || len(evs) != 0 {
			t.Fatalf("empty read: %v %v", seqs(evs), err)
		}
	}
}

// Without history, pages show what the ring still holds.
func TestPagingRingOnly(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{RingSize: 16})
	publish(t, s, 1, 100)
	wantRange(t, pageForward(t, s, 5), 85, 100, 0)
	wantRange(t, pageBackward(t, s, 5), 85, 100, 0)
	evs, err := s.ReadBefore(ctxT(t), 90, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantRange(t, evs, 85, 89, 0)
}
