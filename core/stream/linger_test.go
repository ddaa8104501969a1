package stream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// With a wake linger, a publish after a quiet spell reaches a waiting
// subscriber at once; the publishes within the linger that follows are
// held for its end, so a subscriber takes them in one batch (one write)
// instead of one each; a subscriber that lags by a batch or more is not
// held; closing the stream hands out what was held.
func TestWakeLingerGathersPublishes(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{WakeLinger: time.Hour})
	s := open(t, h, "s", stream.Config{Persist: true})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	publish(t, s, 1, 1)
	wantRange(t, readN(t, sub, 1), 1, 1, 0) // an hour's linger, yet at once
	for i := 2; i <= 5; i++ {
		publish(t, s, i, 1)
	}
	// The timer is ready before the call: a subscriber held for the
	// linger waits, and so takes it; one that is not returns 2..5.
	idle := make(chan time.Time, 1)
	idle <- time.Time{}
	if got, err := sub.NextUntil(ctxT(t), nil, idle); !errors.Is(err, stream.ErrIdle) || len(got) != 0 {
		t.Fatalf("NextUntil within the linger: %d events, %v; want none and ErrIdle (held for the linger)", len(got), err)
	}
	publish(t, s, 6, 100)
	all := s.Subscribe(stream.After(0))
	defer all.Close()
	wantRange(t, readN(t, all, 105), 1, 105, 0)

	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wantRange(t, readN(t, sub, 104), 2, 105, 0)
}

// A held subscriber is woken when the linger ends, with everything
// published during it.
func TestWakeLingerEndWakesSubscribers(t *testing.T) {
	t.Parallel()
	h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{WakeLinger: 20 * time.Millisecond})
	t.Cleanup(func() { _ = h.Close(ctxT(t)) })
	s := open(t, h, "s", stream.Config{Persist: true})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	for round := range 3 {
		from := 1 + round*5
		for i := range 5 {
			publish(t, s, from+i, 1)
		}
		wantRange(t, readN(t, sub, 5), uint64(from), uint64(from+4), 0)
	}
}
