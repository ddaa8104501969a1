package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

func TestSeqsContinueAfterReopen(t *testing.T) {
	t.Parallel()
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persist=%v", persist), func(t *testing.T) {
			t.Parallel()
			store := memstore.New()
			cfg := stream.Config{Persist: persist, RingSize: 8}
			var last uint64
			for round := range 3 {
				h := stream.NewHub(store, discard(), stream.HubOptions{})
				s := open(t, h, "s", cfg)
				if s.Head() < last {
					t.Fatalf("round %d: head %d went back below %d", round, s.Head(), last)
				}
				first, err := s.Publish(ctxT(t), drafts(0, 1), nil)
				if err != nil {
					t.Fatal(err)
				}
				if first <= last {
					t.Fatalf("round %d: seq %d reused (last before reopen %d)", round, first, last)
				}
				if persist && first != last+1 {
					t.Fatalf("round %d: persist stream seq %d, want %d (continue from stored head)", round, first, last+1)
				}
				last = publish(t, s, 0, 20)
				if err := h.Close(ctxT(t)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A non-persist stream reserves seqs with a lease; a failed reservation
// must not let seqs beyond the durable lease be handed out.
func TestFailedLeaseIsNotTrusted(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	h := stream.NewHub(store, discard(), stream.HubOptions{})
	s := open(t, h, "s", stream.Config{})
	store.FailCommits(memstore.ErrInjected)
	if _, err := s.Publish(ctxT(t), drafts(1, 1), nil); !errors.Is(err, memstore.ErrInjected) {
		t.Fatalf("publish with failing store: %v, want ErrInjected", err)
	}
	store.FailCommits(nil)
	last := publish(t, s, 2, 3)
	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	h2 := newHub(t, store)
	s2 := open(t, h2, "s", stream.Config{})
	if next := publish(t, s2, 0, 1); next <= last {
		t.Fatalf("after reopen seq %d reused (last handed out %d)", next, last)
	}
}

func TestPersistVisibleOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true})
	sub := s.Subscribe(stream.FromNow())
	defer sub.Close()
	gate := store.Hold()
	defer gate.Release()

	res := make(chan error, 1)
	go func() { _, err := s.Publish(context.Background(), drafts(1, 3), nil); res <- err }()
	a := <-gate.Entered
	if len(a.Events) != 3 || a.Head != 3 {
		t.Fatalf("commit got %d events head %d, want 3 and 3", len(a.Events), a.Head)
	}
	if h := s.Head(); h != 0 {
		t.Fatalf("head %d before commit, want 0", h)
	}
	if evs, err := s.ReadAfter(ctxT(t), 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("ReadAfter before commit: %v %v, want nothing", seqs(evs), err)
	}
	if evs, err := s.ReadBefore(ctxT(t), 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("ReadBefore before commit: %v %v, want nothing", seqs(evs), err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if evs, err := sub.Next(ctx, nil); len(evs) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Next before commit: %v %v, want nothing", seqs(evs), err)
	}
	gate.Allow()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	wantRange(t, readN(t, sub, 3), 1, 3, 0)
}

// A failed commit leaves no trace: nothing of it is visible, the seqs it
// took are handed out again (no hole a subscriber would have to skip), an
// append with a checkpoint is refused until the emitter took the failure
// (Recover), and Recover names the newest durable checkpoint.
func TestFailedCommitLeavesNoTrace(t *testing.T) {
	t.Parallel()
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persist=%v", persist), func(t *testing.T) {
			t.Parallel()
			store := memstore.New()
			s := open(t, newHub(t, store), "s", stream.Config{Persist: persist, RingSize: 16})
			sub := s.Subscribe(stream.After(0))
			defer sub.Close()
			good := &stream.Checkpoint{Emitter: "e", Value: []byte("good")}
			if _, err := s.Publish(ctxT(t), drafts(1, 2), good); err != nil {
				t.Fatal(err)
			}
			store.FailCommits(memstore.ErrInjected)
			// A checkpoint forces a commit even without history.
			cp := &stream.Checkpoint{Emitter: "e", Value: []byte("x")}
			if _, err := s.Publish(ctxT(t), drafts(100, 3), cp); !errors.Is(err, memstore.ErrInjected) {
				t.Fatalf("publish: %v, want ErrInjected", err)
			}
			if h := s.Head(); h != 2 {
				t.Fatalf("head %d after failed commit, want 2", h)
			}
			store.FailCommits(nil)
			if _, err := s.Publish(ctxT(t), drafts(100, 1), cp); !errors.Is(err, memstore.ErrInjected) {
				t.Fatalf("publish with a checkpoint before Recover: %v, want the failure", err)
			}
			durable, failed := s.Recover()
			if !failed || durable == nil || string(durable.Value) != "good" {
				t.Fatalf("Recover = %+v %v, want the checkpoint good and true", durable, failed)
			}
			if _, failed := s.Recover(); failed {
				t.Fatal("second Recover still reports the failure")
			}
			last := publish(t, s, 3, 2) // seqs 3, 4 again
			if last != 4 {
				t.Fatalf("last %d, want 4 (the failed seqs are handed out again)", last)
			}
			got := readN(t, sub, 4)
			if fmt.Sprint(seqs(got)) != "[1 2 3 4]" {
				t.Fatalf("subscriber got %v, want [1 2 3 4]", seqs(got))
			}
			if persist {
				evs, err := s.ReadAfter(ctxT(t), 0, 10)
				if err != nil || fmt.Sprint(seqs(evs)) != "[1 2 3 4]" {
					t.Fatalf("read: %v %v, want [1 2 3 4]", seqs(evs), err)
				}
			}
		})
	}
}

// Appends queued behind a failing commit fail with it: their seqs follow
// the failed ones, so committing them would leave a hole.
func TestAppendsQueuedBehindAFailedCommitFail(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true, RingSize: 16})
	publish(t, s, 1, 1)
	gate := store.Hold()
	res := make(chan error, 2)
	go func() { _, err := s.Publish(context.Background(), drafts(2, 1), nil); res <- err }()
	<-gate.Entered
	last, wait, err := s.Enqueue(drafts(3, 1), nil)
	if err != nil || last != 3 {
		t.Fatalf("enqueue behind the held commit: %d %v, want seq 3", last, err)
	}
	go func() { res <- wait(context.Background()) }()
	store.FailCommits(memstore.ErrInjected)
	gate.Release()
	for range 2 {
		if err := <-res; !errors.Is(err, memstore.ErrInjected) {
			t.Fatalf("publish: %v, want ErrInjected", err)
		}
	}
	store.FailCommits(nil)
	if last := publish(t, s, 2, 1); last != 2 {
		t.Fatalf("next seq %d, want 2", last)
	}
}

// slowStore widens the window in which publishers queue behind a commit,
// and records the checkpoints in the order they became durable.
type slowStore struct {
	*memstore.Store
	mu  sync.Mutex
	cps []int
}

// Submit keeps the stream's pipelined commits going through Commit.
func (s *slowStore) Submit(ctx context.Context, a stream.Append) (func() error, error) {
	return s.Store.SubmitVia(ctx, a, s.Commit)
}

func (s *slowStore) Commit(ctx context.Context, a stream.Append) error {
	time.Sleep(50 * time.Microsecond)
	if err := s.Store.Commit(ctx, a); err != nil {
		return err
	}
	if a.Checkpoint != nil {
		n, _ := strconv.Atoi(string(a.Checkpoint.Value))
		s.mu.Lock()
		s.cps = append(s.cps, n)
		s.mu.Unlock()
	}
	return nil
}

func TestConcurrentPublishers(t *testing.T) {
	t.Parallel()
	const workers, rounds = 8, 40
	store := &slowStore{Store: memstore.New()}
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true})
	live := s.Subscribe(stream.FromNow())
	defer live.Close()

	type rec struct {
		last uint64
		w, i int
		k    int
	}
	recs := make(chan rec, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				k := 1 + (w+i)%3
				ds := make([]event.Draft, k)
				for j := range ds {
					ds[j] = event.Draft{Type: "t", Data: []byte(fmt.Sprintf(`{"w":%d,"i":%d,"j":%d}`, w, i, j))}
				}
				last, err := s.Publish(context.Background(), ds, nil)
				if err != nil {
					t.Error(err)
					return
				}
				recs <- rec{last, w, i, k}
			}
		})
	}
	total := 0
	for w := range workers {
		for i := range rounds {
			total += 1 + (w+i)%3
		}
	}
	got := readN(t, live, total) // concurrently with the publishers
	wg.Wait()
	close(recs)
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("subscriber event %d has seq %d: not in seq order", i, e.Seq)
		}
	}
	for r := range recs {
		for j := range r.k {
			e := got[r.last-uint64(r.k-1-j)-1]
			if want := fmt.Sprintf(`{"w":%d,"i":%d,"j":%d}`, r.w, r.i, j); string(e.Data) != want {
				t.Fatalf("seq %d holds %s, want %s (publish returned last %d)", e.Seq, e.Data, want, r.last)
			}
		}
	}
}

// Enqueue callers that order their checkpoints by a lock held across
// Enqueue (as the emitter manager does) must see them committed in that
// order: a later checkpoint is never overwritten by an earlier one.
func TestEnqueueCommitsInCallOrder(t *testing.T) {
	t.Parallel()
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persist=%v", persist), func(t *testing.T) {
			t.Parallel()
			const workers, rounds = 6, 50
			store := &slowStore{Store: memstore.New()}
			s := open(t, newHub(t, store), "s", stream.Config{Persist: persist})
			var mu sync.Mutex
			n := 0
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for i := range rounds {
						mu.Lock()
						n++
						cp := &stream.Checkpoint{Emitter: "e", Value: []byte(strconv.Itoa(n))}
						_, wait, err := s.Enqueue(drafts(n, i%2), cp)
						mu.Unlock()
						if err != nil {
							t.Error(err)
							return
						}
						if err := wait(context.Background()); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			store.mu.Lock()
			cps := store.cps
			store.mu.Unlock()
			for i := 1; i < len(cps); i++ {
				if cps[i] <= cps[i-1] {
					t.Fatalf("checkpoint %d committed after %d", cps[i], cps[i-1])
				}
			}
			durable, err := store.Checkpoint(ctxT(t), "e")
			if err != nil || string(durable) != strconv.Itoa(workers*rounds) {
				t.Fatalf("durable checkpoint %q %v, want %d", durable, err, workers*rounds)
			}
		})
	}
}

// The publisher that leads a group commit returns once its own append is
// durable, even while later publishers keep the stream committing.
func TestLeaderReturnsAfterOwnCommit(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	s := open(t, newHub(t, store), "s", stream.Config{Persist: true})
	gate := store.Hold()
	defer gate.Release()

	_, waitA, err := s.Enqueue(drafts(1, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	resA := make(chan error, 1)
	go func() { resA <- waitA(context.Background()) }()
	<-gate.Entered // A's commit is running
	lastB, waitB, err := s.Enqueue(drafts(2, 1), nil)
	if err != nil || lastB != 2 {
		t.Fatalf("enqueue B: %d %v", lastB, err)
	}
	resB := make(chan error, 1)
	go func() { resB <- waitB(context.Background()) }()
	gate.Allow() // A's commit lands; B's is held
	select {
	case err := <-resA:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("A's publish did not return while B's commit was held")
	}
	if b := <-gate.Entered; len(b.Events) != 1 || b.Events[0].Seq != 2 {
		t.Fatalf("second commit %+v, want B's event", b)
	}
	if h := s.Head(); h != 1 {
		t.Fatalf("head %d, want 1 while B's commit is held", h)
	}
	gate.Allow()
	if err := <-resB; err != nil {
		t.Fatal(err)
	}
	if h := s.Head(); h != 2 {
		t.Fatalf("head %d, want 2", h)
	}
}
