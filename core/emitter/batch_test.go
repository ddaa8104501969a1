package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// answer is what one Command call returned.
type answer struct {
	n   int // the count of a "next"; 0 on error
	err error
}

// start runs a command in the background; its answer arrives on the channel.
func start(e *env, ctx context.Context, id, name string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		res, err := e.m.Command(ctx, id, name, nil)
		var r struct{ N int }
		if err == nil {
			err = json.Unmarshal(res, &r)
		}
		ch <- answer{r.N, err}
	}()
	return ch
}

// queued waits until n commands wait on emitter id (bounded by guard).
func queued(t *testing.T, e *env, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for e.m.QueuedCommands(id) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d commands queued on %s, want %d", e.m.QueuedCommands(id), id, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(guard):
		t.Fatal("command did not return")
		return answer{}
	}
}

// holdFirst holds the runner and starts one "next" that leads, holding the
// lead while the test queues more callers behind it.
func holdFirst(t *testing.T, e *env, id string) (first <-chan answer, entered <-chan int, release chan<- struct{}) {
	t.Helper()
	entered, release = e.runner.hold()
	first = start(e, ctxT(t), id, "next")
	if n := <-entered; n != 1 {
		t.Fatalf("first batch of %d", n)
	}
	return first, entered, release
}

// The commands that queue while one round trip is in flight go to the
// runner together in the next one, each on its predecessor's checkpoint,
// and land in one append: consecutive counts, events in command order.
func TestCommandsQueuedDuringARoundTripShareTheNext(t *testing.T) {
	t.Parallel()
	const waiting = 10
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	first, entered, release := holdFirst(t, e, "c")
	var answers []<-chan answer
	for i := range waiting {
		answers = append(answers, start(e, ctxT(t), "c", "next"))
		queued(t, e, "c", i+1)
	}
	release <- struct{}{}
	if n := <-entered; n != waiting {
		t.Fatalf("second batch of %d commands, want all %d that queued", n, waiting)
	}
	release <- struct{}{}
	if a := recv(t, first); a.err != nil || a.n != 1 {
		t.Fatalf("first: %+v", a)
	}
	for i, ch := range answers {
		if a := recv(t, ch); a.err != nil || a.n != i+2 {
			t.Fatalf("queued command %d: %+v, want count %d", i, a, i+2)
		}
	}
	if got := e.runner.batchSizes(); !slices.Equal(got, []int{1, waiting}) {
		t.Fatalf("batches %v, want [1 %d]", got, waiting)
	}
	if cp := e.durable(t, "c"); cp != strconv.Itoa(waiting+1) {
		t.Fatalf("durable %q, want %d", cp, waiting+1)
	}
	st, _ := e.m.Stream("c")
	evs, _ := st.ReadAfter(ctxT(t), 0, 100)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || string(ev.Data) != `{"n":`+strconv.Itoa(i+1)+`}` {
			t.Fatalf("event %d: seq %d %s", i, ev.Seq, ev.Data)
		}
	}
	if len(evs) != waiting+1 {
		t.Fatalf("%d events, want %d", len(evs), waiting+1)
	}
}

// A failed command of a batch fails only its caller and changes nothing:
// the next one runs on the checkpoint before it.
func TestBatchedCommandFailureIsItsOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	first, entered, release := holdFirst(t, e, "c")
	names := []string{"next", "fail", "next", "jump", "next"}
	var answers []<-chan answer
	for i, name := range names {
		answers = append(answers, start(e, ctxT(t), "c", name))
		queued(t, e, "c", i+1)
	}
	release <- struct{}{}
	<-entered
	release <- struct{}{}
	if a := recv(t, first); a.n != 1 {
		t.Fatalf("first: %+v", a)
	}
	got := make([]answer, len(answers))
	for i, ch := range answers {
		got[i] = recv(t, ch)
	}
	var ce *emitter.CommandError
	if got[0].n != 2 || got[2].n != 3 || got[4].n != 4 || !errors.As(got[1].err, &ce) || !errors.Is(got[3].err, emitter.ErrUnknownCommand) {
		t.Fatalf("answers %+v: want 2, CommandError, 3, ErrUnknownCommand, 4", got)
	}
	if cp := e.durable(t, "c"); cp != "4" {
		t.Fatalf("durable %q, want 4", cp)
	}
}

// A caller that gives up while its command still waits in the queue
// leaves: its command never runs, the others run as if it never came.
func TestCancelledQueuedCommandNeverRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	first, entered, release := holdFirst(t, e, "c")
	ctx, cancel := context.WithCancel(ctxT(t))
	gone := start(e, ctx, "c", "next")
	queued(t, e, "c", 1)
	kept := start(e, ctxT(t), "c", "next")
	queued(t, e, "c", 2)
	cancel()
	if a := recv(t, gone); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("cancelled caller: %+v, want context.Canceled", a)
	}
	queued(t, e, "c", 1)
	release <- struct{}{}
	<-entered
	release <- struct{}{}
	if a, b := recv(t, first), recv(t, kept); a.n != 1 || b.n != 2 {
		t.Fatalf("first %+v, kept %+v: want 1 and 2", a, b)
	}
	if got := e.runner.batchSizes(); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("batches %v: the cancelled command ran", got)
	}
	if cp := e.durable(t, "c"); cp != "2" {
		t.Fatalf("durable %q, want 2", cp)
	}
}

// The leader of a batch giving up does not fail the other callers of its
// batch: the round trip and the commit go on for them.
func TestLeaderGivingUpDoesNotFailItsBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	first, entered, release := holdFirst(t, e, "c")
	ctx, cancel := context.WithCancel(ctxT(t))
	leader := start(e, ctx, "c", "next")
	queued(t, e, "c", 1)
	other := start(e, ctxT(t), "c", "next")
	queued(t, e, "c", 2)
	release <- struct{}{}
	if n := <-entered; n != 2 {
		t.Fatalf("second batch of %d, want 2", n)
	}
	cancel() // while its batch is in the runner
	release <- struct{}{}
	if a := recv(t, first); a.n != 1 {
		t.Fatalf("first: %+v", a)
	}
	if a := recv(t, other); a.err != nil || a.n != 3 {
		t.Fatalf("other caller of the batch: %+v, want 3", a)
	}
	// The leader's command ran (count 2); whether its caller heard so or
	// only its cancellation, it is not applied twice.
	if a := recv(t, leader); a.n != 2 && !errors.Is(a.err, context.Canceled) {
		t.Fatalf("leader: %+v", a)
	}
	if cp := e.durable(t, "c"); cp != "3" {
		t.Fatalf("durable %q, want 3", cp)
	}
	e.runner.unhold()
	if n := e.next(t, "c"); n != 4 {
		t.Fatalf("next = %d, want 4", n)
	}
}

// When a batch's commit fails, every caller of it fails and the next
// command starts again from the durable checkpoint.
func TestBatchCommitFailureFailsItsCallers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	first, entered, release := holdFirst(t, e, "c")
	var answers []<-chan answer
	for i := range 3 {
		answers = append(answers, start(e, ctxT(t), "c", "next"))
		queued(t, e, "c", i+1)
	}
	e.store.FailCommits(memstore.ErrInjected)
	release <- struct{}{}
	<-entered
	release <- struct{}{}
	for _, ch := range append(answers, first) {
		if a := recv(t, ch); !errors.Is(a.err, memstore.ErrInjected) {
			t.Fatalf("command on a failing store: %+v, want ErrInjected", a)
		}
	}
	e.store.FailCommits(nil)
	e.runner.unhold()
	if n := e.next(t, "c"); n != 1 {
		t.Fatalf("next after failed commits = %d, want 1 (nothing was stored)", n)
	}
}

// A commit that fails after every caller of its batch gave up still
// drops the checkpoint it would have stored: the next command starts from
// the durable one, not from a count that was never stored.
func TestCommitFailingAfterItsCallersLeftResyncs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	e.next(t, "c")
	st, _ := e.m.Stream("c")
	gate := e.store.Hold()
	defer gate.Release()
	// A publish holds the stream's commit, so the command's append queues
	// behind it and its commit wait is one that gives up with its ctx.
	published := make(chan error, 2)
	go func() {
		_, err := st.Publish(context.Background(), nil, &stream.Checkpoint{Emitter: "c", Value: []byte("1")})
		published <- err
	}()
	<-gate.Entered
	entered, release := e.runner.hold()
	ctx, cancel := context.WithCancel(ctxT(t))
	gone := start(e, ctx, "c", "next")
	<-entered
	// A second caller leads once the first handed on, which is after the
	// first's append was queued.
	after := start(e, ctxT(t), "c", "fail")
	queued(t, e, "c", 1)
	release <- struct{}{}
	<-entered
	release <- struct{}{}
	var ce *emitter.CommandError
	if a := recv(t, after); !errors.As(a.err, &ce) {
		t.Fatalf("fail: %+v", a)
	}
	cancel()
	if a := recv(t, gone); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("caller that gave up: %+v, want context.Canceled", a)
	}
	gate.Allow() // the publish commits
	<-gate.Entered
	// Queued behind the command's commit: its answer says that one is over.
	go func() { _, err := st.Publish(context.Background(), nil, nil); published <- err }()
	e.store.FailCommits(memstore.ErrInjected)
	gate.Release()
	for range 2 {
		<-published
	}
	e.store.FailCommits(nil)
	e.runner.unhold()
	if cp := e.durable(t, "c"); cp != "1" {
		t.Fatalf("durable %q, want 1", cp)
	}
	// Nobody is left to hear of the failure, so the resync follows it in
	// the background: commands that change nothing show the checkpoint
	// commands run on, until it is the durable one (never, before the fix).
	for deadline := time.Now().Add(guard); e.runner.lastReceived() != "1"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("commands still run on checkpoint %q, want the durable 1", e.runner.lastReceived())
		}
		_, _ = e.m.Command(ctxT(t), "c", "fail", nil)
	}
	if n := e.next(t, "c"); n != 2 {
		t.Fatalf("next after the failed commit = %d, want 2 (count 2 was never stored)", n)
	}
}
