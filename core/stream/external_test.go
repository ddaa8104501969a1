package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// source is an external stream's source: the history another node (here
// an origin hub over a memstore) committed, and counts of its use.
type source struct {
	*memstore.Store
	origin   *stream.Stream
	reads    atomic.Int32
	released atomic.Int32
}

func (s *source) ReadAfter(ctx context.Context, name string, after uint64, limit int) ([]*event.Event, error) {
	s.reads.Add(1)
	return s.Store.ReadAfter(ctx, name, after, limit)
}

func (s *source) Release() { s.released.Add(1) }

// newSource returns a source whose origin stream name already holds n
// persisted events {"n":1}..{"n":n}.
func newSource(t *testing.T, name string, n int) *source {
	t.Helper()
	st := memstore.New()
	src := &source{Store: st, origin: open(t, newHub(t, st), name, stream.Config{Persist: true})}
	if n > 0 {
		publish(t, src.origin, 1, n)
	}
	return src
}

// more publishes n events at the origin and returns them, as the
// source's live feed would carry them.
func (s *source) more(t *testing.T, n int) []*event.Event {
	t.Helper()
	last := publish(t, s.origin, int(s.origin.Head())+1, n)
	evs, err := s.origin.ReadAfter(ctxT(t), last-uint64(n), n)
	if err != nil || len(evs) != n {
		t.Fatalf("read back %d events: %v %v", n, seqs(evs), err)
	}
	return evs
}

func openExt(t *testing.T, h *stream.Hub, name string, cfg stream.Config, src stream.ExternalSource) *stream.Stream {
	t.Helper()
	s, err := h.OpenExternal(ctxT(t), name, cfg, src)
	if err != nil {
		t.Fatalf("open external %s: %v", name, err)
	}
	return s
}

// pick returns the events of evs with the given seqs, in that order.
func pick(evs []*event.Event, want ...uint64) []*event.Event {
	var out []*event.Event
	for _, w := range want {
		for _, e := range evs {
			if e.Seq == w {
				out = append(out, e)
			}
		}
	}
	return out
}

// Deliver applies new seqs in order, drops seen ones and stops at a hole,
// which the caller fills from the source.
func TestExternalDeliver(t *testing.T) {
	t.Parallel()
	type step struct {
		seqs     []uint64
		from, to uint64
		ok       bool
		head     uint64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{[]uint64{1, 2, 3}, 0, 0, true, 3}, {[]uint64{4}, 0, 0, true, 4}}},
		{"seen seqs dropped", []step{{[]uint64{1, 2, 3}, 0, 0, true, 3}, {[]uint64{2, 3, 4, 5}, 0, 0, true, 5}, {[]uint64{1, 5}, 0, 0, true, 5}}},
		{"duplicates in a batch", []step{{[]uint64{1, 1, 2, 2, 3}, 0, 0, true, 3}}},
		{"hole then fill", []step{{[]uint64{1, 2}, 0, 0, true, 2}, {[]uint64{5, 6}, 3, 4, false, 2}, {[]uint64{3, 4, 5, 6}, 0, 0, true, 6}}},
		{"hole inside a batch", []step{{[]uint64{1, 2, 4, 5}, 3, 3, false, 2}, {[]uint64{3, 4, 5}, 0, 0, true, 5}}},
		{"hole at the start", []step{{[]uint64{3}, 1, 2, false, 0}, {[]uint64{1, 2, 3}, 0, 0, true, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := newSource(t, "x", 0)
			all := src.more(t, 8)
			src2 := &source{Store: memstore.New()} // an empty source: head 0
			s := openExt(t, newHub(t, memstore.New()), "x", stream.Config{Persist: true, RingSize: 16}, src2)
			sub := s.Subscribe(stream.After(0))
			defer sub.Close()
			for i, st := range tc.steps {
				from, to, ok := s.Deliver(pick(all, st.seqs...))
				if from != st.from || to != st.to || ok != st.ok || s.Head() != st.head {
					t.Fatalf("step %d Deliver(%v) = %d,%d,%v head %d; want %d,%d,%v head %d",
						i, st.seqs, from, to, ok, s.Head(), st.from, st.to, st.ok, st.head)
				}
			}
			head := tc.steps[len(tc.steps)-1].head
			wantRange(t, readN(t, sub, int(head)), 1, head, 0)
			if src2.reads.Load() != 0 {
				t.Fatal("a subscriber within the ring read the source")
			}
		})
	}
}

// Skip jumps the head over seqs the source never used, telling nobody;
// pages never show DeliverGap's marker.
func TestExternalSkip(t *testing.T) {
	t.Parallel()
	src := newSource(t, "x", 0)
	all := src.more(t, 12)
	s := openExt(t, newHub(t, memstore.New()), "x", stream.Config{RingSize: 16}, &source{Store: memstore.New()})
	sub := s.Subscribe(stream.After(0))
	defer sub.Close()
	s.Deliver(pick(all, 1, 2))
	s.Skip(6)
	s.Skip(5) // behind the head: nothing
	if !s.DeliverGap(7, 9) {
		t.Fatal("DeliverGap at head+1 refused")
	}
	if _, _, ok := s.Deliver(pick(all, 10, 11)); !ok || s.Head() != 11 {
		t.Fatalf("deliver after skip: ok %v head %d", ok, s.Head())
	}
	got := readN(t, sub, 5)
	wantRange(t, got[:2], 1, 2, 0)
	wantGap(t, got[2], 7, 9)
	wantRange(t, got[3:], 10, 11, 0)
	page, err := s.ReadAfter(ctxT(t), 0, 10)
	if err != nil || len(page) != 4 || page[2].Seq != 10 {
		t.Fatalf("page %v: %v, want 1 2 10 11", seqs(page), err)
	}
}

// A subscriber or a page older than the ring reads through the source
// (or gets a gap when the stream keeps no history there).
func TestExternalCatchUpThroughSource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		persist bool
		pruneTo int // the source keeps only its newest pruneTo events
	}{
		{"history at the source", true, 0},
		{"source pruned", true, 10},
		{"no history", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := newSource(t, "x", 40)
			if tc.pruneTo > 0 {
				if _, err := src.Prune(ctxT(t), "x", tc.pruneTo, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			s := openExt(t, newHub(t, memstore.New()), "x", stream.Config{Persist: tc.persist, RingSize: 8}, src)
			if s.Head() != 40 {
				t.Fatalf("head at open %d, want the source's 40", s.Head())
			}
			sub := s.Subscribe(stream.After(0))
			defer sub.Close()
			if _, _, ok := s.Deliver(src.more(t, 10)); !ok {
				t.Fatal("deliver 41..50 reported a hole")
			}
			switch {
			case !tc.persist:
				got := readN(t, sub, 9)
				wantGap(t, got[0], 1, 42)
				wantRange(t, got[1:], 43, 50, 0)
			case tc.pruneTo > 0:
				got := readN(t, sub, 21)
				wantGap(t, got[0], 1, 30)
				wantRange(t, got[1:], 31, 50, 0)
			default:
				wantRange(t, readN(t, sub, 50), 1, 50, 0)
				wantRange(t, pageForward(t, s, 7), 1, 50, 0)
				wantRange(t, pageBackward(t, s, 7), 1, 50, 0)
				if src.reads.Load() == 0 {
					t.Fatal("catch-up beyond the ring never read the source")
				}
			}
		})
	}
}

// nextOrIdle returns what Next gives before a short timer, or nil if
// nothing came.
func nextOrIdle(t *testing.T, sub *stream.Subscription) []*event.Event {
	t.Helper()
	timer := time.NewTimer(50 * time.Millisecond)
	defer timer.Stop()
	got, err := sub.NextUntil(ctxT(t), nil, timer.C)
	if errors.Is(err, stream.ErrIdle) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantOffline(t *testing.T, got []*event.Event, seq uint64, reason string) {
	t.Helper()
	var d struct{ Reason string }
	if len(got) != 1 || got[0].Type != event.TypeOffline || got[0].Seq != seq ||
		json.Unmarshal(got[0].Data, &d) != nil || d.Reason != reason {
		t.Fatalf("got %v, want one offline marker at seq %d reason %q", got, seq, reason)
	}
}

// Each subscriber, waiting, behind or new, gets one offline marker per
// loss of the source, at its cursor, then delivery resumes with nothing
// lost or repeated.
func TestExternalOffline(t *testing.T) {
	t.Parallel()
	src := newSource(t, "x", 20)
	s := openExt(t, newHub(t, memstore.New()), "x", stream.Config{Persist: true, RingSize: 4}, src)
	waiting := s.Subscribe(stream.FromNow())
	defer waiting.Close()
	behind := s.Subscribe(stream.After(5)) // needs the source's history
	defer behind.Close()

	s.SetOffline(true, "node n2 lost")
	s.SetOffline(true, "again") // still the same loss: no second marker
	newcomer := s.Subscribe(stream.FromNow())
	defer newcomer.Close()
	for _, sub := range []struct {
		sub *stream.Subscription
		at  uint64
	}{{waiting, 20}, {behind, 5}, {newcomer, 20}} {
		wantOffline(t, readN(t, sub.sub, 1), sub.at, "node n2 lost")
		if got := nextOrIdle(t, sub.sub); got != nil {
			t.Fatalf("after the marker got %v, want to keep waiting", seqs(got))
		}
	}
	if n := src.reads.Load(); n != 0 {
		t.Fatalf("%d reads of a lost source, want none", n)
	}

	s.SetOffline(false, "")
	if _, _, ok := s.Deliver(src.more(t, 3)); !ok {
		t.Fatal("deliver after the loss reported a hole")
	}
	wantRange(t, readN(t, waiting, 3), 21, 23, 0)
	wantRange(t, readN(t, newcomer, 3), 21, 23, 0)
	wantRange(t, readN(t, behind, 18), 6, 23, 0)

	s.SetOffline(true, "lost twice")
	wantOffline(t, readN(t, waiting, 1), 23, "lost twice")
}

// An external stream without subscribers for ExternalIdle is dropped and
// its source released, once; the hub's Close releases the others.
func TestExternalIdleDrop(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{ExternalIdle: 20 * time.Millisecond})
	idle, kept := newSource(t, "idle", 1), newSource(t, "kept", 1)
	s := openExt(t, h, "idle", stream.Config{Persist: true}, idle)
	openExt(t, h, "kept", stream.Config{Persist: true}, kept)
	sub := s.Subscribe(stream.After(0))
	wantRange(t, readN(t, sub, 1), 1, 1, 0)
	time.Sleep(100 * time.Millisecond) // five idle periods with a subscriber
	if idle.released.Load() != 0 {
		t.Fatal("released a stream with a subscriber")
	}
	sub.Close()
	for i := 0; idle.released.Load() == 0 && i < int(guard/time.Millisecond); i++ {
		time.Sleep(time.Millisecond)
	}
	if n := idle.released.Load(); n != 1 {
		t.Fatalf("idle source released %d times, want 1", n)
	}
	names := h.Names()
	if len(names) != 0 {
		t.Fatalf("hub still holds %v", names)
	}
	if kept.released.Load() != 1 {
		t.Fatal("the other idle stream was not released too")
	}
	late := s.Subscribe(stream.After(1))
	defer late.Close()
	if _, err := late.Next(ctxT(t), nil); !errors.Is(err, stream.ErrClosed) {
		t.Fatalf("next on a dropped stream: %v, want ErrClosed", err)
	}
	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if idle.released.Load() != 1 || kept.released.Load() != 1 {
		t.Fatal("a source was released twice")
	}
}

// Close releases every external source once; Remove releases one.
func TestExternalReleasedOnRemoveAndClose(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{})
	a, b := newSource(t, "a", 0), newSource(t, "b", 0)
	openExt(t, h, "a", stream.Config{}, a)
	openExt(t, h, "b", stream.Config{}, b)
	if err := h.Remove(ctxT(t), "a", true); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if a.released.Load() != 1 || b.released.Load() != 1 {
		t.Fatalf("released a %d b %d times, want once each", a.released.Load(), b.released.Load())
	}
}

// An external stream takes no Publish; opening one over a local stream
// fails; a second OpenExternal returns the open stream and releases the
// source it did not keep.
func TestExternalOpenAndPublishRefused(t *testing.T) {
	t.Parallel()
	h := newHub(t, memstore.New())
	local := open(t, h, "local", stream.Config{})
	first := newSource(t, "x", 2)
	s := openExt(t, h, "x", stream.Config{Persist: true}, first)

	if _, err := s.Publish(ctxT(t), drafts(1, 1), nil); !errors.Is(err, stream.ErrExternal) {
		t.Fatalf("publish: %v, want ErrExternal", err)
	}
	if _, _, err := s.Enqueue(drafts(1, 1), nil); !errors.Is(err, stream.ErrExternal) {
		t.Fatalf("enqueue: %v, want ErrExternal", err)
	}
	if s.Head() != 2 || !s.External() || local.External() {
		t.Fatalf("head %d external %v/%v", s.Head(), s.External(), local.External())
	}

	second := newSource(t, "x", 0)
	again, err := h.OpenExternal(ctxT(t), "x", stream.Config{}, second)
	if err != nil || again != s || second.released.Load() != 1 || first.released.Load() != 0 {
		t.Fatalf("second open: %v same %v, released %d/%d", err, again == s, first.released.Load(), second.released.Load())
	}
	over := newSource(t, "local", 0)
	if _, err := h.OpenExternal(ctxT(t), "local", stream.Config{}, over); err == nil || over.released.Load() != 1 {
		t.Fatalf("external over a local stream: %v, released %d", err, over.released.Load())
	}
}

// A hole the source no longer holds becomes one gap marker: a subscriber
// passing through learns the range it missed, then continues.
func TestDeliverGapMarksLostRange(t *testing.T) {
	t.Parallel()
	src := newSource(t, "gappy", 0)
	all := src.more(t, 9)
	s := openExt(t, newHub(t, memstore.New()), "gappy", stream.Config{RingSize: 16}, &source{Store: memstore.New()})
	if _, _, ok := s.Deliver(pick(all, 1, 2)); !ok {
		t.Fatal("first events refused")
	}
	sub := s.Subscribe(stream.After(2))
	defer sub.Close()
	if !s.DeliverGap(3, 7) {
		t.Fatal("DeliverGap at head+1 refused")
	}
	if s.DeliverGap(20, 25) {
		t.Fatal("DeliverGap beyond head+1 accepted")
	}
	if _, _, ok := s.Deliver(pick(all, 8, 9)); !ok {
		t.Fatal("events after the gap not contiguous")
	}
	got := readN(t, sub, 3)
	if len(got) != 3 || !got[0].IsGap() || got[0].Seq != 7 || string(got[0].Data) != `{"from":3,"to":7}` || got[1].Seq != 8 || got[2].Seq != 9 {
		t.Fatalf("subscriber got %v", seqs(got))
	}
}

// A client resuming a stream whose source is lost, beyond the head the
// stream knows, keeps its resume point: once the source is back it gets
// what follows it, not a replay from the head.
func TestExternalResumeWhileOfflineKeepsPosition(t *testing.T) {
	t.Parallel()
	src := newSource(t, "late", 0)
	all := src.more(t, 7)
	s := openExt(t, newHub(t, memstore.New()), "late", stream.Config{RingSize: 16}, &source{Store: memstore.New()})
	s.SetOffline(true, "owner unreachable")
	sub := s.Subscribe(stream.After(5))
	defer sub.Close()
	if sub.Cursor() != 5 {
		t.Fatalf("cursor %d, want the resume point 5", sub.Cursor())
	}
	if m := readN(t, sub, 1); m[0].Type != event.TypeOffline || m[0].Seq != 5 {
		t.Fatalf("while offline: %v", seqs(m))
	}
	if _, _, ok := s.Deliver(all); !ok {
		t.Fatal("deliver refused")
	}
	s.SetOffline(false, "")
	if got := readN(t, sub, 2); got[0].Seq != 6 || got[1].Seq != 7 {
		t.Fatalf("after the source's return: %v", seqs(got))
	}
}
