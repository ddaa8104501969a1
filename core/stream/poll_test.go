package stream_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// Poll hands out what the ring holds without waiting; with nothing there
// it registers its wake, which the next publish calls once; Unpoll (or
// Close) drops the registration; what needs a wait (a closed stream, a
// cursor behind the ring) is left to NextUntil.
func TestPollWakesOnceAndDefersWaits(t *testing.T) {
	t.Parallel()
	s := open(t, newHub(t, memstore.New()), "s", stream.Config{RingSize: 8})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	var woken atomic.Int32
	wake := func() { woken.Add(1) }

	if got, r := sub.Poll(nil, wake); r != stream.PollWait || len(got) != 0 {
		t.Fatalf("Poll of an empty stream: %d events, %v; want none, PollWait", len(got), r)
	}
	sub.Poll(nil, wake) // registered once, however often it polls
	publish(t, s, 1, 2)
	publish(t, s, 3, 1)
	if n := woken.Load(); n != 1 {
		t.Fatalf("wake called %d times for two publishes after one registration, want 1", n)
	}
	got, r := sub.Poll(nil, wake)
	if r != stream.PollEvents {
		t.Fatalf("Poll after the publishes: %v, want PollEvents", r)
	}
	wantRange(t, got, 1, 3, 0)

	sub.Poll(nil, wake)
	sub.Unpoll()
	publish(t, s, 4, 1)
	if n := woken.Load(); n != 1 {
		t.Fatalf("wake called after Unpoll (%d calls)", n)
	}

	// Out of the ring (8 events): the catch-up is NextUntil's.
	publish(t, s, 5, 20)
	if _, r := sub.Poll(nil, wake); r != stream.PollBlocking {
		t.Fatalf("Poll behind the ring: %v, want PollBlocking", r)
	}
}

// A registered wake is called when the stream closes (its subscriber then
// finds the end through NextUntil), and when a linger ends.
func TestPollWokenByCloseAndLingerEnd(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{WakeLinger: 20 * time.Millisecond})
	s := open(t, h, "s", stream.Config{Persist: true})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	woken := make(chan struct{}, 10)
	wake := func() { woken <- struct{}{} }

	sub.Poll(nil, wake)
	publish(t, s, 1, 1) // after a quiet spell: at once
	<-woken
	wantRange(t, pollAll(t, sub, wake), 1, 1, 0)
	publish(t, s, 2, 1) // within the linger: held for its end
	if got, r := sub.Poll(nil, wake); r != stream.PollWait || len(got) != 0 {
		t.Fatalf("Poll within the linger: %d events, %v; want none, PollWait", len(got), r)
	}
	<-woken // the linger's end
	wantRange(t, pollAll(t, sub, wake), 2, 2, 0)

	sub.Poll(nil, wake)
	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	<-woken
	if _, r := sub.Poll(nil, wake); r != stream.PollBlocking {
		t.Fatalf("Poll of a closed stream: %v, want PollBlocking", r)
	}
}

func pollAll(t *testing.T, sub *stream.Subscription, wake func()) []*event.Event {
	t.Helper()
	got, r := sub.Poll(nil, wake)
	if r != stream.PollEvents {
		t.Fatalf("Poll after a wake: %v, want PollEvents", r)
	}
	return got
}
