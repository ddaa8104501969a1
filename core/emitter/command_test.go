package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

func TestCommandCommitsBeforeReturning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	for want := 1; want <= 3; want++ {
		if n := e.next(t, "c"); n != want {
			t.Fatalf("next = %d, want %d", n, want)
		}
		if cp := e.durable(t, "c"); cp != strconv.Itoa(want) {
			t.Fatalf("durable checkpoint %q after next returned %d", cp, want)
		}
	}
	st, _ := e.m.Stream("c")
	evs, err := st.ReadAfter(ctxT(t), 0, 10)
	if err != nil || len(evs) != 3 || string(evs[2].Data) != `{"n":3}` || evs[2].Seq != 3 {
		t.Fatalf("stream %v %v", evs, err)
	}

	gate := e.store.Hold()
	defer gate.Release()
	res := make(chan error, 1)
	go func() { _, err := e.m.Command(context.Background(), "c", "next", nil); res <- err }()
	<-gate.Entered
	select {
	case err := <-res:
		t.Fatalf("command returned (%v) before its commit", err)
	default:
	}
	gate.Allow()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if cp := e.durable(t, "c"); cp != "4" {
		t.Fatalf("durable %q, want 4", cp)
	}
}

// Commands of one emitter are serialized and each gets the checkpoint the
// previous one produced, even while earlier commits are still landing.
func TestCommandsSerializedOnLatestCheckpoint(t *testing.T) {
	t.Parallel()
	const workers, rounds = 8, 15
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	got := make(chan int, workers*rounds)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				res, err := e.m.Command(context.Background(), "c", "next", nil)
				if err != nil {
					t.Error(err)
					return
				}
				var r struct{ N int }
				_ = json.Unmarshal(res, &r)
				got <- r.N
			}
		})
	}
	wg.Wait()
	close(got)
	seen := map[int]bool{}
	for n := range got {
		if seen[n] {
			t.Fatalf("count %d produced twice: a command ran on a stale checkpoint", n)
		}
		seen[n] = true
	}
	if len(seen) != workers*rounds {
		t.Fatalf("%d distinct counts, want %d", len(seen), workers*rounds)
	}
	if cp := e.durable(t, "c"); cp != strconv.Itoa(workers*rounds) {
		t.Fatalf("durable checkpoint %q, want %d", cp, workers*rounds)
	}
	st, _ := e.m.Stream("c")
	evs, _ := st.ReadAfter(ctxT(t), 0, 1000)
	for i, ev := range evs {
		if string(ev.Data) != `{"n":`+strconv.Itoa(i+1)+`}` {
			t.Fatalf("seq %d holds %s: events out of command order", ev.Seq, ev.Data)
		}
	}
}

// A command whose commit failed was never accepted: the next one starts
// from the durable checkpoint.
func TestCommandAfterFailedCommitUsesDurableCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	e.next(t, "c")
	e.store.FailCommits(memstore.ErrInjected)
	if _, err := e.m.Command(ctxT(t), "c", "next", nil); !errors.Is(err, memstore.ErrInjected) {
		t.Fatalf("command on failing store: %v, want ErrInjected", err)
	}
	e.store.FailCommits(nil)
	if n := e.next(t, "c"); n != 2 {
		t.Fatalf("next after failed commit = %d, want 2 (count 2 was never stored)", n)
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "c"})
	var ce *emitter.CommandError
	if _, err := e.m.Command(ctxT(t), "c", "fail", nil); !errors.As(err, &ce) || ce.Code != "bad" {
		t.Fatalf("fail: %v, want *CommandError", err)
	}
	if _, err := e.m.Command(ctxT(t), "c", "jump", nil); !errors.Is(err, emitter.ErrUnknownCommand) {
		t.Fatalf("jump: %v, want ErrUnknownCommand", err)
	}
	if _, err := e.m.Command(ctxT(t), "nope", "next", nil); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("unknown emitter: %v, want ErrNotFound", err)
	}
	if n := e.next(t, "c"); n != 1 {
		t.Fatalf("failed commands moved the count: %d", n)
	}
}

func TestSinkDeliverAndCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "s"})
	sink := e.runner.sink("s")
	st, _ := e.m.Stream("s")
	sub := st.Subscribe(stream.FromNow())
	defer sub.Close()

	batch := emitter.Batch{Events: []event.Draft{{Type: "a", Data: []byte(`1`)}, {Type: "b", Data: []byte(`2`)}}, Checkpoint: []byte("7")}
	if err := sink.Deliver(ctxT(t), batch); err != nil {
		t.Fatal(err)
	}
	if cp := e.durable(t, "s"); cp != "7" || st.Head() != 2 {
		t.Fatalf("after Deliver: durable %q head %d", cp, st.Head())
	}
	if evs, err := sub.Next(ctxT(t), nil); err != nil || len(evs) != 2 || evs[1].Type != "b" {
		t.Fatalf("subscriber got %v %v", evs, err)
	}
	if err := sink.Deliver(ctxT(t), emitter.Batch{Events: batch.Events[:1]}); err != nil {
		t.Fatal(err)
	}
	if cp, err := sink.Checkpoint(ctxT(t)); err != nil || string(cp) != "7" {
		t.Fatalf("checkpoint %q %v, want 7 (a batch without one keeps it)", cp, err)
	}

	// Checkpoint waits for deliveries already accepted.
	gate := e.store.Hold()
	defer gate.Release()
	delivered := make(chan error, 1)
	go func() { delivered <- sink.Deliver(context.Background(), emitter.Batch{Checkpoint: []byte("8")}) }()
	<-gate.Entered
	cp := make(chan string, 1)
	go func() {
		v, err := sink.Checkpoint(context.Background())
		if err != nil {
			t.Error(err)
		}
		cp <- string(v)
	}()
	select {
	case v := <-cp:
		t.Fatalf("Checkpoint returned %q before the pending commit landed", v)
	case <-time.After(10 * time.Millisecond): // only gives a wrong Checkpoint a chance to show
	}
	gate.Release()
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	if v := <-cp; v != "8" {
		t.Fatalf("Checkpoint %q, want 8", v)
	}
	// The next command counts on from the checkpoint the plugin delivered.
	if n := e.next(t, "s"); n != 9 {
		t.Fatalf("next = %d, want 9", n)
	}
}

func TestRestoreStartsStoredEmitters(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	first := newEnv(t, store)
	first.create(t, emitter.CreateRequest{ID: "a"})
	first.create(t, emitter.CreateRequest{ID: "b"})
	first.next(t, "a")
	first.next(t, "a")
	for _, id := range []string{"bad1", "bad2"} {
		if err := store.PutSpec(ctxT(t), emitter.Spec{ID: id, Kind: "counter", Config: json.RawMessage(`{"refuse_start":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.m.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := first.hub.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	second := newEnv(t, store)
	err := second.m.Restore(ctxT(t))
	if !errors.Is(err, errStart) {
		t.Fatalf("restore: %v, want the start errors joined", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("restore error %v: want one error per failed emitter", err)
	}
	page, _ := second.m.List(ctxT(t), emitter.Filter{}, "", 0)
	if len(page) != 2 {
		t.Fatalf("running %v, want a and b", page)
	}
	if cp, err := second.runner.sink("a").Checkpoint(ctxT(t)); err != nil || string(cp) != "2" {
		t.Fatalf("restored checkpoint %q %v, want 2", cp, err)
	}
	if n := second.next(t, "a"); n != 3 {
		t.Fatalf("next after restore = %d, want 3", n)
	}
	st, _ := second.m.Stream("a")
	if st.Head() != 3 {
		t.Fatalf("restored stream head %d, want 3 (seqs continue)", st.Head())
	}
}
