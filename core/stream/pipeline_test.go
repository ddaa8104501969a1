package stream_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// heldWaits passes appends to a real Submitter, which takes (and
// commits) them at once, but holds each one's outcome until the test
// gives its verdict: nil for the store's own outcome, or an error that
// stands for a failure found after the store took it.
type heldWaits struct {
	stream.Store
	sub       stream.Submitter
	submitted chan *held
}

type held struct {
	a       stream.Append
	verdict chan error
}

type submitStore interface {
	stream.Store
	stream.Submitter
}

func newHeldWaits(inner submitStore) *heldWaits {
	return &heldWaits{Store: inner, sub: inner, submitted: make(chan *held, 16)}
}

func (h *heldWaits) Submit(ctx context.Context, a stream.Append) (func() error, error) {
	wait, err := h.sub.Submit(ctx, a)
	if err != nil {
		return nil, err
	}
	c := &held{a: a, verdict: make(chan error, 1)}
	h.submitted <- c
	return func() error {
		err := wait()
		if v := <-c.verdict; v != nil {
			return v
		}
		return err
	}, nil
}

// next returns the next submitted append, within the hang guard.
func (h *heldWaits) next(t *testing.T, what string) *held {
	t.Helper()
	select {
	case c := <-h.submitted:
		return c
	case <-time.After(guard):
		t.Fatalf("%s was not submitted", what)
	}
	return nil
}

// answered is one caller's outcome and the head it saw once answered.
type answered struct {
	err  error
	head uint64
}

// startPublish publishes one event {"n":n} and reports its outcome.
func startPublish(s *stream.Stream, n int) <-chan answered {
	return startPublishCP(s, n, nil)
}

// startPublishCP is startPublish with a checkpoint in the same commit.
func startPublishCP(s *stream.Stream, n int, cp *stream.Checkpoint) <-chan answered {
	res := make(chan answered, 1)
	_, wait, err := s.Enqueue(drafts(n, 1), cp)
	if err != nil {
		res <- answered{err: err}
		return res
	}
	go func() {
		err := wait(context.Background())
		res <- answered{err, s.Head()}
	}()
	return res
}

// A second commit of a stream is submitted while the first is still in
// flight, and its caller is answered only once both are visible, even
// when the store settles the second first.
func TestSecondCommitInFlight(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) submitStore{
		"memstore": func(*testing.T) submitStore { return memstore.New() },
		"bolt":     func(t *testing.T) submitStore { return openBolt(t, filepath.Join(t.TempDir(), "s.db")) },
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := newHeldWaits(mk(t))
			s := open(t, newHub(t, store), "s", stream.Config{Persist: true, RingSize: 16})
			sub := s.Subscribe(stream.After(0))
			defer sub.Close()

			resA := startPublish(s, 1)
			a := store.next(t, "the first commit")
			resB := startPublish(s, 2)
			b := store.next(t, "the second commit, while the first is in flight,")
			if a.a.Events[0].Seq != 1 || b.a.Events[0].Seq != 2 {
				t.Fatalf("submitted %v then %v, want seq 1 then 2", seqs(a.a.Events), seqs(b.a.Events))
			}
			b.verdict <- nil
			if h := s.Head(); h != 0 {
				t.Fatalf("head %d while the first commit is in flight, want 0", h)
			}
			a.verdict <- nil
			for i, res := range []<-chan answered{resA, resB} {
				got := <-res
				if got.err != nil || got.head < uint64(i+1) {
					t.Fatalf("caller %d answered %v with head %d, want success once seq %d is visible", i+1, got.err, got.head, i+1)
				}
			}
			wantRange(t, readN(t, sub, 2), 1, 2, 0)
			evs, err := s.ReadAfter(ctxT(t), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			wantRange(t, evs, 1, 2, 0)
		})
	}
}

// A failure of the first commit in flight fails the second, even if the
// store accepted it: nothing of either becomes visible, the seqs are
// handed out again, and Recover reports the failure with the newest
// acknowledged checkpoint, not the one the store took behind it.
func TestFailedCommitFailsTheOneInFlightBehindIt(t *testing.T) {
	t.Parallel()
	store := newHeldWaits(memstore.New())
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true, RingSize: 16})
	sub := s.Subscribe(stream.After(0))
	defer sub.Close()
	cp := func(v string) *stream.Checkpoint { return &stream.Checkpoint{Emitter: "e", Value: []byte(v)} }
	res := startPublishCP(s, 1, cp("good"))
	store.next(t, "the first commit").verdict <- nil
	if got := <-res; got.err != nil {
		t.Fatal(got.err)
	}

	resA := startPublishCP(s, 2, cp("a"))
	a := store.next(t, "commit A")
	resB := startPublishCP(s, 3, cp("b"))
	b := store.next(t, "commit B, while A is in flight,")
	b.verdict <- nil // the store would keep B
	a.verdict <- memstore.ErrInjected
	for _, res := range []<-chan answered{resA, resB} {
		if got := <-res; !errors.Is(got.err, memstore.ErrInjected) || got.head != 1 {
			t.Fatalf("caller answered %v with head %d, want A's failure and head 1", got.err, got.head)
		}
	}
	if durable, failed := s.Recover(); !failed || durable == nil || string(durable.Value) != "good" {
		t.Fatalf("Recover = %+v %v, want the checkpoint good and the failure", durable, failed)
	}
	res = startPublish(s, 2)
	c := store.next(t, "the commit after the failure")
	if fmt.Sprint(seqs(c.a.Events)) != "[2]" {
		t.Fatalf("commit after the failure holds %v, want seq 2 again", seqs(c.a.Events))
	}
	c.verdict <- nil
	if got := <-res; got.err != nil || got.head != 2 {
		t.Fatalf("publish after the failure: %v, head %d", got.err, got.head)
	}
	wantRange(t, readN(t, sub, 2), 1, 2, 0)
}
