package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
)

// errCommit is the injected commit failure: what a full disk answers.
var errCommit = fmt.Errorf("injected: no space left on device: %w", stream.ErrStoreUnavailable)

// gatedStore is a real bbolt store whose next commit, once armed, waits
// for the test to let it commit or fail.
type gatedStore struct {
	*bolt.Store
	armed   atomic.Bool
	entered chan struct{}
	outcome chan error
}

func (g *gatedStore) Commit(ctx context.Context, a stream.Append) error {
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		if err := <-g.outcome; err != nil {
			return err
		}
	}
	return g.Store.Commit(ctx, a)
}

// Submit holds like Commit: the stream submits through it.
func (g *gatedStore) Submit(ctx context.Context, a stream.Append) (func() error, error) {
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		if err := <-g.outcome; err != nil {
			return nil, err
		}
	}
	return g.Store.Submit(ctx, a)
}

// countingRunner counts the commands the plugin has answered.
type countingRunner struct {
	*Host
	answered atomic.Int64
}

func (r *countingRunner) CommandBatch(ctx context.Context, kind, id string, config json.RawMessage, cp []byte, cmds []emitter.Cmd) ([]emitter.CmdOutcome, error) {
	outs, err := r.Host.CommandBatch(ctx, kind, id, config, cp, cmds)
	r.answered.Add(int64(len(outs)))
	return outs, err
}

// A commit that fails while the plugin already computed the batches
// behind it fails those too, and rolls the plugin back: the next next
// continues from the last durable position, with its value, the history
// has no hole, and a restart agrees.
func TestFailedCommitMidPipelineRollsBackThePlugin(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "sidestream-fibonacci")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../plugins/cmd/sidestream-fibonacci").CombinedOutput(); err != nil {
		t.Fatalf("build fibonacci plugin: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ctx := ctxT(t)
	log := slog.New(slog.DiscardHandler)
	st, err := bolt.Open(ctx, filepath.Join(dir, "state.db"), bolt.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	store := &gatedStore{Store: st, entered: make(chan struct{}), outcome: make(chan error)}
	s := &fibSystem{store: st, hub: stream.NewHub(store, log, stream.HubOptions{})}
	s.host = newHost(t, fastConfig(Source{Name: "fibonacci", Cmd: []string{bin}}), log)
	runner := &countingRunner{Host: s.host}
	s.mgr = emitter.NewManager(store, runner, s.hub, log)
	if _, err := s.mgr.Create(ctx, emitter.CreateRequest{ID: "fib", Kind: "fibonacci"}); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		if a, err := s.command(ctx, "next"); err != nil || a.Position != want {
			t.Fatalf("next = %+v, %v; want position %d", a, err, want)
		}
	}

	// Batch k (position 4) holds in its commit; the nexts behind it go
	// through the plugin meanwhile (positions 5..8 on 4's state).
	store.armed.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	next := func() {
		_, err := s.command(ctx, "next")
		errs <- err
	}
	wg.Go(next)
	<-store.entered
	for range 4 {
		wg.Go(next)
	}
	eventually(t, "the plugin to answer the nexts behind the held commit", func() bool { return runner.answered.Load() == 3+1+4 })
	store.outcome <- errCommit
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, stream.ErrStoreUnavailable) {
			t.Fatalf("a next of the failed commit or behind it answered %v, want the commit's failure", err)
		}
	}

	a, err := s.command(ctx, "next")
	if want := fibonacci(4).String(); err != nil || a.Position != 4 || a.Value != want {
		t.Fatalf("next after the failed commit = %+v, %v; want position 4 value %s", a, err, want)
	}
	fibStream, err := s.mgr.Stream("fib")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := fibStream.ReadAfter(ctx, 0, 100)
	if err != nil || len(evs) != 4 {
		t.Fatalf("history: %d events, %v; want 4", len(evs), err)
	}
	for i, ev := range evs {
		var e fibAnswer
		if err := json.Unmarshal(ev.Data, &e); err != nil || ev.Seq != uint64(i+1) || e.Position != uint64(i+1) {
			t.Fatalf("event %d: seq %d %s; want seq and position %d", i, ev.Seq, ev.Data, i+1)
		}
	}
	if err := errors.Join(s.mgr.Close(ctx), s.hub.Close(ctx), st.Close(ctx)); err != nil {
		t.Fatal(err)
	}

	s = openFib(t, dir, bin)
	defer s.close(t)
	if cur, err := s.command(ctx, "current"); err != nil || cur.Position != 4 || cur.Value != fibonacci(4).String() {
		t.Fatalf("current after restart = %+v, %v; want position 4", cur, err)
	}
}
