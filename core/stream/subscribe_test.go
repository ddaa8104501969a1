package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

func TestSubscribePositions(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{Persist: true})
	publish(t, s, 1, 5)
	now := s.Subscribe(stream.FromNow())
	after2 := s.Subscribe(stream.After(2))
	all := s.Subscribe(stream.After(0))
	beyond := s.Subscribe(stream.After(99)) // never handed out: starts at head
	if n := s.Subscribers(); n != 4 {
		t.Fatalf("subscribers %d, want 4", n)
	}
	publish(t, s, 6, 3)

	wantRange(t, readN(t, now, 3), 6, 8, 0)
	wantRange(t, readN(t, after2, 6), 3, 8, 0)
	wantRange(t, readN(t, all, 8), 1, 8, 0)
	wantRange(t, readN(t, beyond, 3), 6, 8, 0)
	if c := all.Cursor(); c != 8 {
		t.Fatalf("cursor %d, want 8", c)
	}
	for _, sub := range []*stream.Subscription{now, after2, all, beyond, beyond} {
		sub.Close() // twice for one: idempotent
	}
	if n := s.Subscribers(); n != 0 {
		t.Fatalf("subscribers %d after close, want 0", n)
	}
}

// Next coalesces: one call returns everything visible, up to MaxBatch.
func TestNextCoalescesUpToMaxBatch(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{RingSize: 4 * stream.MaxBatch})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	for i := range 10 {
		publish(t, s, 1+i*(stream.MaxBatch/10), stream.MaxBatch/10)
	}
	total := stream.MaxBatch + 100
	publish(t, s, 10*(stream.MaxBatch/10)+1, total-10*(stream.MaxBatch/10))
	first, err := sub.Next(ctxT(t), nil)
	if err != nil || len(first) != stream.MaxBatch {
		t.Fatalf("first Next: %d events %v, want MaxBatch=%d", len(first), err, stream.MaxBatch)
	}
	second, err := sub.Next(ctxT(t), first)
	if err != nil || len(second) != total {
		t.Fatalf("second Next: %d events %v, want all %d", len(second), err, total)
	}
	wantRange(t, second, 1, uint64(total), 0)
}

// A subscriber that falls out of the ring of a persisted stream continues
// from history: nothing is lost, nothing is repeated.
func TestFallBehindContinuesFromHistory(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true, RingSize: 16})
	early := s.Subscribe(stream.FromNow()) // subscribed before, never read
	defer early.Close()
	mid := s.Subscribe(stream.After(0))
	defer mid.Close()
	for i := range 20 {
		publish(t, s, 1+i*7, 7)
	}
	wantRange(t, readN(t, early, 140), 1, 140, 0)
	got, err := mid.Next(ctxT(t), nil) // part of history only
	if err != nil || len(got) == 0 || len(got) >= 140 {
		t.Fatalf("first Next: %d events %v", len(got), err)
	}
	publish(t, s, 141, 60) // pushes mid's cursor out of the ring again
	got = append(got, readN(t, mid, 200-len(got))...)
	wantRange(t, got, 1, 200, 0)
}

// Without history, a subscriber out of the ring gets one gap marker for
// exactly the seqs it missed, then the ring.
func TestFallBehindWithoutHistoryGetsGap(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{RingSize: 16})
	publish(t, s, 1, 3)
	sub := s.Subscribe(stream.After(1))
	defer sub.Close()
	publish(t, s, 4, 97) // head 100, ring holds 85..100
	got := readN(t, sub, 17)
	wantGap(t, got[0], 2, 84)
	wantRange(t, got[1:], 85, 100, 0)
	if c := sub.Cursor(); c != 100 {
		t.Fatalf("cursor %d, want 100", c)
	}
	publish(t, s, 101, 1)
	wantRange(t, readN(t, sub, 1), 101, 101, 0)
}

// With history pruned, the gap covers what history no longer holds and
// history serves the rest.
func TestPrunedHistoryGivesGap(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true, RingSize: 16})
	publish(t, s, 1, 100)
	if n, err := store.Prune(ctxT(t), "s", 50, time.Time{}); err != nil || n != 50 {
		t.Fatalf("prune: %d %v", n, err)
	}
	sub := s.Subscribe(stream.After(10))
	defer sub.Close()
	got := readN(t, sub, 51)
	wantGap(t, got[0], 11, 50)
	wantRange(t, got[1:], 51, 100, 0)
}

// A subscriber that never reads does not hold back the publisher, and its
// memory stays one cursor.
func TestSlowSubscriberNeverBlocksPublish(t *testing.T) {
	t.Parallel()
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persist=%v", persist), func(t *testing.T) {
			t.Parallel()
			s := open(t, newHub(t, memstore.New()), "s", stream.Config{Persist: persist, RingSize: 16})
			idle := s.Subscribe(stream.FromNow())
			defer idle.Close()
			done := make(chan error, 1)
			go func() {
				for i := range 500 {
					if _, err := s.Publish(context.Background(), drafts(1+i*20, 20), nil); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(guard):
				t.Fatal("publish blocked behind a subscriber that does not read")
			}
			if h := s.Head(); h != 10000 {
				t.Fatalf("head %d, want 10000", h)
			}
			// The idle subscriber still gets the newest events, after a
			// gap (no history) or everything from history.
			got := readN(t, idle, map[bool]int{true: stream.MaxBatch, false: 17}[persist])
			if persist {
				wantRange(t, got, 1, stream.MaxBatch, 0)
			} else {
				wantGap(t, got[0], 1, 9984)
				wantRange(t, got[1:], 9985, 10000, 0)
			}
		})
	}
}

func TestNextRespectsContext(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { _, err := sub.Next(ctx, nil); res <- err }()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next: %v, want context.Canceled", err)
		}
	case <-time.After(guard):
		t.Fatal("Next ignored its cancelled context")
	}
	// The subscription stays usable.
	publish(t, s, 1, 1)
	wantRange(t, readN(t, sub, 1), 1, 1, 0)
}

// NextUntil ends with ErrIdle when its timer fires with nothing to read,
// but events already visible win over a timer that already fired, and the
// subscription stays usable after an idle wait.
func TestNextUntilTimer(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	fired := make(chan time.Time, 1)
	fired <- time.Now()
	got, err := sub.NextUntil(ctxT(t), nil, fired)
	if !errors.Is(err, stream.ErrIdle) || len(got) != 0 {
		t.Fatalf("NextUntil on a quiet stream = %d events, %v; want ErrIdle", len(got), err)
	}
	publish(t, s, 1, 2)
	fired <- time.Now()
	got, err = sub.NextUntil(ctxT(t), nil, fired)
	if err != nil {
		t.Fatalf("NextUntil with events visible: %v", err)
	}
	wantRange(t, got, 1, 2, 0)
	res := make(chan error, 1)
	go func() {
		got, err := sub.NextUntil(ctxT(t), nil, nil) // nil timer: waits for events
		if err == nil && (len(got) != 1 || got[0].Seq != 3) {
			err = fmt.Errorf("got %v, want seq 3", seqs(got))
		}
		res <- err
	}()
	publish(t, s, 3, 1)
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("NextUntil with a nil timer never returned")
	}
}

// After Remove or Close, Next drains what was visible, then ErrClosed;
// a Next already waiting wakes up with ErrClosed.
func TestCloseDrainsThenErrClosed(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"remove", "close"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{})
			s := open(t, h, "s", stream.Config{Persist: true})
			waiting := s.Subscribe(stream.FromNow())
			defer waiting.Close()
			publish(t, s, 1, 5)
			lagging := s.Subscribe(stream.After(0))
			defer lagging.Close()
			wantRange(t, readN(t, waiting, 5), 1, 5, 0)
			res := make(chan error, 1)
			go func() { _, err := waiting.Next(context.Background(), nil); res <- err }()

			var err error
			if how == "remove" {
				err = h.Remove(ctxT(t), "s", false)
			} else {
				err = h.Close(ctxT(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-res:
				if !errors.Is(err, stream.ErrClosed) {
					t.Fatalf("waiting Next: %v, want ErrClosed", err)
				}
			case <-time.After(guard):
				t.Fatal("waiting Next not woken by close")
			}
			got, err := lagging.Next(ctxT(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantRange(t, got, 1, 5, 0)
			if _, err := lagging.Next(ctxT(t), nil); !errors.Is(err, stream.ErrClosed) {
				t.Fatalf("drained Next: %v, want ErrClosed", err)
			}
			if _, err := s.Publish(ctxT(t), drafts(6, 1), nil); !errors.Is(err, stream.ErrClosed) {
				t.Fatalf("publish after close: %v, want ErrClosed", err)
			}
			if _, ok := h.Get("s"); ok {
				t.Fatal("hub still holds the stream")
			}
			if err := h.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Open(ctxT(t), "s", stream.Config{}); !errors.Is(err, stream.ErrClosed) {
				t.Fatalf("open after close: %v, want ErrClosed", err)
			}
		})
	}
}

// Gap markers are events like others: encodable, with the seq a client
// resumes after.
func TestGapMarkerEncodes(t *testing.T) {
	t.Parallel()
	g := event.Gap("s", 3, 9)
	if want := `"seq":9,"type":"gap"`; !strings.Contains(string(g.JSON()), want) || string(g.Data) != `{"from":3,"to":9}` {
		t.Fatalf("gap %s, want %s and its range as data", g.JSON(), want)
	}
}

// A stream without history starts each process beyond every seq the last
// one handed out (its leased head). A subscriber resuming from before
// that is told the truth, a reset with the new start, not a gap over
// seqs that never existed; then it gets the new events without a gap.
func TestResumeAcrossRestartOfStreamWithoutHistoryIsAReset(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	cfg := stream.Config{RingSize: 16}
	h := stream.NewHub(store, discard(), stream.HubOptions{})
	last := publish(t, open(t, h, "s", cfg), 1, 5)
	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s := open(t, newHub(t, store), "s", cfg)
	start := s.Head() + 1
	if start <= last+1 {
		t.Fatalf("restarted at %d, want beyond the leased head (> %d)", start, last+1)
	}
	for _, after := range []uint64{0, 3, last} {
		sub := s.Subscribe(stream.After(after))
		evs, err := sub.Next(ctxT(t), nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("after %d: %v %v, want one reset", after, seqs(evs), err)
		}
		e := evs[0]
		if e.Type != event.TypeReset || e.Seq != start-1 || string(e.Data) != fmt.Sprintf(`{"start":%d}`, start) || !e.IsControl() {
			t.Fatalf("after %d: got %s seq %d %s, want reset seq %d start %d", after, e.Type, e.Seq, e.Data, start-1, start)
		}
		if sub.Cursor() != start-1 {
			t.Fatalf("cursor %d after the reset, want %d", sub.Cursor(), start-1)
		}
		sub.Close()
	}
	sub := s.Subscribe(stream.After(last))
	defer sub.Close()
	publish(t, s, 6, 3)
	got := readN(t, sub, 4)
	if got[0].Type != event.TypeReset {
		t.Fatalf("first %s, want reset", got[0].Type)
	}
	wantRange(t, got[1:], start, start+2, 6-int(start))
}
