package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
)

// fibSystem is the command path of the sidecar: a bbolt store, streams,
// this host running the real fibonacci plugin binary, and the manager.
type fibSystem struct {
	store *bolt.Store
	hub   *stream.Hub
	host  *Host
	mgr   *emitter.Manager
}

func openFib(t testing.TB, dir, bin string) *fibSystem {
	t.Helper()
	ctx := ctxT(t)
	log := slog.New(slog.DiscardHandler)
	store, err := bolt.Open(ctx, filepath.Join(dir, "state.db"), bolt.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	s := &fibSystem{store: store, hub: stream.NewHub(store, log, stream.HubOptions{})}
	if s.host, err = New(fastConfig(Source{Name: "fibonacci", Cmd: []string{bin}}), log); err != nil {
		t.Fatal(err)
	}
	s.mgr = emitter.NewManager(store, s.host, s.hub, log)
	if err := s.mgr.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *fibSystem) close(t testing.TB) {
	t.Helper()
	ctx := ctxT(t)
	if err := errors.Join(s.mgr.Close(ctx), s.host.Close(ctx), s.hub.Close(ctx), s.store.Close(ctx)); err != nil {
		t.Fatal(err)
	}
}

type fibAnswer struct {
	Position uint64 `json:"position"`
	Value    string `json:"value"`
}

func (s *fibSystem) command(ctx context.Context, name string) (fibAnswer, error) {
	res, err := s.mgr.Command(ctx, "fib", name, nil)
	var a fibAnswer
	if err == nil {
		err = json.Unmarshal(res, &a)
	}
	return a, err
}

// N concurrent nexts through the real plugin process (batched into shared
// round trips and commits) get N distinct consecutive positions, the
// stream holds their events in position order, and after a restart of the
// whole system current is F(N).
func TestConcurrentFibonacciNextsThroughPlugin(t *testing.T) {
	t.Parallel()
	const n = 300
	bin := filepath.Join(t.TempDir(), "sidestream-fibonacci")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../plugins/cmd/sidestream-fibonacci").CombinedOutput(); err != nil {
		t.Fatalf("build fibonacci plugin: %v\n%s", err, out)
	}
	dir := t.TempDir()
	s := openFib(t, dir, bin)
	if _, err := s.mgr.Create(ctxT(t), emitter.CreateRequest{ID: "fib", Kind: "fibonacci"}); err != nil {
		t.Fatal(err)
	}
	positions := make(chan uint64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			a, err := s.command(ctxT(t), "next")
			if err != nil {
				t.Error(err)
				return
			}
			positions <- a.Position
		})
	}
	wg.Wait()
	close(positions)
	seen := make([]bool, n+1)
	for p := range positions {
		if p < 1 || p > n || seen[p] {
			t.Fatalf("position %d out of 1..%d or given twice", p, n)
		}
		seen[p] = true
	}
	st, err := s.mgr.Stream("fib")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.ReadAfter(ctxT(t), 0, n+1)
	if err != nil || len(evs) != n {
		t.Fatalf("%d events, %v; want %d", len(evs), err, n)
	}
	for i, ev := range evs {
		var a fibAnswer
		if err := json.Unmarshal(ev.Data, &a); err != nil || a.Position != uint64(i+1) || ev.Seq != uint64(i+1) {
			t.Fatalf("event %d: seq %d %s: events out of position order", i, ev.Seq, ev.Data)
		}
	}
	s.close(t)

	s = openFib(t, dir, bin)
	defer s.close(t)
	cur, err := s.command(ctxT(t), "current")
	want := fibonacci(n)
	if err != nil || cur.Position != n || cur.Value != want.String() {
		t.Fatalf("current after restart = %+v, %v; want position %d value %s", cur, err, n, want)
	}
}

// fibonacci is F(n), computed here independently of the plugin.
func fibonacci(n int) *big.Int {
	a, b := big.NewInt(0), big.NewInt(1)
	for range n {
		a.Add(a, b)
		a, b = b, a
	}
	return a
}

// A batch whose answer is larger than one gRPC message may be (64 fibonacci
// nexts at ~280,000 digits: ~72 MB) still runs: every next answers, on
// its predecessor's state, as one Command each would.
func TestCommandBatchLargerThanOneMessage(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "sidestream-fibonacci")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../plugins/cmd/sidestream-fibonacci").CombinedOutput(); err != nil {
		t.Fatalf("build fibonacci plugin: %v\n%s", err, out)
	}
	h := newHost(t, fastConfig(Source{Name: "fibonacci", Cmd: []string{bin}}), nil)
	const digits = 280_000
	// The plugin trusts the host's checkpoint: any two numbers step alike.
	cur, prev := strings.Repeat("2", digits), strings.Repeat("1", digits)
	cp := []byte(`{"position":5,"current":"` + cur + `","previous":"` + prev + `"}`)
	cmds := make([]emitter.Cmd, emitter.MaxCommandBatch)
	for i := range cmds {
		cmds[i] = emitter.Cmd{Name: "next"}
	}
	outs, err := h.CommandBatch(ctxT(t), "fibonacci", "big", json.RawMessage(`{}`), cp, cmds)
	if err != nil {
		t.Fatalf("batch of %d nexts: %v", len(cmds), err)
	}
	for i, o := range outs {
		var a fibAnswer
		if o.Err != nil || json.Unmarshal(o.Result, &a) != nil || a.Position != uint64(6+i) {
			t.Fatalf("next %d: position %d, %v", i, a.Position, o.Err)
		}
	}
}
