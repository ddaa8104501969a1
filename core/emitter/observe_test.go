package emitter_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

// stageRecorder is a CommandObserver that keeps what it was told.
type stageRecorder struct {
	mu      sync.Mutex
	stages  map[emitter.CommandStage][]stageRecord
	batches []int
}

type stageRecord struct {
	kind string
	d    time.Duration
	n    int
}

func (r *stageRecorder) CommandStage(kind string, stage emitter.CommandStage, d time.Duration, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stages == nil {
		r.stages = map[emitter.CommandStage][]stageRecord{}
	}
	r.stages[stage] = append(r.stages[stage], stageRecord{kind, d, n})
}

func (r *stageRecorder) CommandBatch(_ string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, n)
}

func (r *stageRecorder) get(stage emitter.CommandStage) []stageRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stages[stage])
}

// hold is how long the test keeps a round trip or a commit waiting, so
// that the stage holding it must report at least that much.
const hold = 20 * time.Millisecond

// Each command reports its three stages once: the queue (until its round
// trip starts: commands queued behind a held round trip wait at least as
// long as it is held), the plugin round trip and the commit (each at
// least as long as the test held them), and each round trip its size.
// The lower bounds follow from the order of events, not from speed.
func TestCommandStagesAreObserved(t *testing.T) {
	t.Parallel()
	rec := &stageRecorder{}
	e := newEnv(t, nil, emitter.WithCommandObserver(rec))
	e.create(t, emitter.CreateRequest{ID: "c"})
	gate := e.store.Hold()
	first, entered, release := holdFirst(t, e, "c")
	const queuedBehind = 3
	var answers []<-chan answer
	var lastQueued time.Time
	for i := range queuedBehind {
		answers = append(answers, start(e, ctxT(t), "c", "next"))
		queued(t, e, "c", i+1)
		lastQueued = time.Now()
	}
	time.Sleep(hold)
	firstReleased := time.Now()
	release <- struct{}{} // the first round trip ends; the other three go in one
	if n := <-entered; n != queuedBehind {
		t.Fatalf("second round trip of %d commands, want %d", n, queuedBehind)
	}
	time.Sleep(hold)
	release <- struct{}{}
	select { // the first commit waits at the gate, the second behind it
	case <-gate.Entered:
	case <-time.After(guard):
		t.Fatal("the first commit did not reach the store")
	}
	time.Sleep(hold)
	gate.Release()
	for _, ch := range append(answers, first) {
		if a := recv(t, ch); a.err != nil {
			t.Fatalf("command: %v", a.err)
		}
	}

	if got := rec.batches; !slices.Equal(got, []int{1, queuedBehind}) {
		t.Fatalf("round trip sizes %v, want [1 %d]", got, queuedBehind)
	}
	queue := rec.get(emitter.StageQueue)
	if len(queue) != 1+queuedBehind {
		t.Fatalf("%d queue records, want one per command (%d)", len(queue), 1+queuedBehind)
	}
	for _, q := range queue[1:] { // the first command led at once
		if min := firstReleased.Sub(lastQueued); q.d < min || q.n != 1 || q.kind != "counter" {
			t.Fatalf("queued command: %+v, want ≥ %v (held behind the first round trip), n 1, kind counter", q, min)
		}
	}
	for _, stage := range []emitter.CommandStage{emitter.StagePlugin, emitter.StageCommit} {
		got := rec.get(stage)
		var ns []int
		for _, r := range got {
			ns = append(ns, r.n)
			// Both round trips were held; of the commits, the first
			// surely was (it reached the gate before the hold began).
			if (stage == emitter.StagePlugin || r.n == 1) && r.d < hold {
				t.Fatalf("%s stage of %d commands took %v, held for %v", stage, r.n, r.d, hold)
			}
		}
		if slices.Sort(ns); !slices.Equal(ns, []int{1, queuedBehind}) {
			t.Fatalf("%s stage reported for %v commands, want [1 %d]", stage, ns, queuedBehind)
		}
	}
}
