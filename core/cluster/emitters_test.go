package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
)

// The fakes below are one package's unit-test doubles; the real registry,
// peers and mirrors run in core/natsbus's tests and the e2e cluster tests.

type memRegistry struct {
	mu      sync.Mutex
	m       map[string]cluster.Entry
	failPut error
}

func (r *memRegistry) Claim(_ context.Context, e cluster.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[e.Spec.ID]; ok {
		return emitter.ErrExists
	}
	r.m[e.Spec.ID] = e
	return nil
}
func (r *memRegistry) Put(_ context.Context, e cluster.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failPut != nil {
		return r.failPut
	}
	r.m[e.Spec.ID] = e
	return nil
}
func (r *memRegistry) Delete(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
	return nil
}
func (r *memRegistry) Get(_ context.Context, id string) (cluster.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[id]
	if !ok {
		return e, emitter.ErrNotFound
	}
	return e, nil
}
func (r *memRegistry) List(context.Context) ([]cluster.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cluster.Entry
	for _, e := range r.m {
		out = append(out, e)
	}
	return out, nil
}

// memLocal is one node's manager: specs only.
type memLocal struct {
	mu    sync.Mutex
	specs map[string]emitter.Spec
	fail  error
}

func (l *memLocal) Create(_ context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	if l.fail != nil {
		return emitter.Spec{}, l.fail
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := emitter.Spec{ID: req.ID, Kind: req.Kind, CreatedAt: time.Now()}
	l.specs[req.ID] = s
	return s, nil
}
func (l *memLocal) Ensure(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	if s, err := l.Get(ctx, req.ID); err == nil {
		return s, nil
	}
	return l.Create(ctx, req)
}
func (l *memLocal) Get(_ context.Context, id string) (emitter.Spec, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.specs[id]
	if !ok {
		return s, emitter.ErrNotFound
	}
	return s, nil
}
func (l *memLocal) List(context.Context, emitter.Filter, string, int) ([]emitter.Spec, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []emitter.Spec
	for _, s := range l.specs {
		out = append(out, s)
	}
	return out, ""
}
func (l *memLocal) Delete(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.specs[id]; !ok {
		return emitter.ErrNotFound
	}
	delete(l.specs, id)
	return nil
}
func (l *memLocal) Command(_ context.Context, id, name string, _ json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`"` + name + ` on ` + id + `"`), nil
}
func (l *memLocal) Stream(string) (*stream.Stream, error) { return nil, emitter.ErrNotFound }
func (l *memLocal) Attach(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	l.mu.Lock()
	s, ok := l.specs[req.ID]
	if ok {
		s.Stopped = false
		l.specs[req.ID] = s
	}
	l.mu.Unlock()
	if ok {
		return s, nil
	}
	return l.Create(ctx, req)
}
func (l *memLocal) Stop(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.specs[id]
	if !ok {
		return emitter.ErrNotFound
	}
	s.Stopped = true
	l.specs[id] = s
	return nil
}

// node wires one Emitters over a shared registry; peers reach the other
// nodes' Emitters directly, as the RPC would.
type testNodes map[string]*cluster.Emitters

type directPeers struct{ nodes testNodes }

func (p directPeers) Create(ctx context.Context, node string, req emitter.CreateRequest) (emitter.Spec, error) {
	return p.nodes[node].Create(ctx, req)
}
func (p directPeers) Delete(ctx context.Context, node, id string) error {
	return p.nodes[node].Delete(ctx, id)
}
func (p directPeers) Command(ctx context.Context, node, id, name string, args json.RawMessage) (json.RawMessage, error) {
	return p.nodes[node].Command(ctx, id, name, args)
}
func (p directPeers) Known(node string) bool { _, ok := p.nodes[node]; return ok }

type noExport struct{}

func (noExport) Export(*stream.Stream) {}
func (noExport) Unexport(string)       {}

func twoNodes(t *testing.T) (testNodes, map[string]*memLocal) {
	t.Helper()
	nodes, locals, _ := twoNodesReg(t)
	return nodes, locals
}

func twoNodesReg(t *testing.T) (testNodes, map[string]*memLocal, *memRegistry) {
	t.Helper()
	reg := &memRegistry{m: map[string]cluster.Entry{}}
	nodes := testNodes{}
	locals := map[string]*memLocal{}
	for _, name := range []string{"a", "b"} {
		locals[name] = &memLocal{specs: map[string]emitter.Spec{}}
		nodes[name] = cluster.NewEmitters(name, locals[name], reg, directPeers{nodes}, nil, noExport{}, slog.New(slog.DiscardHandler))
	}
	return nodes, locals, reg
}

func TestEmittersRunOnTheirNodeAndForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes, locals := twoNodes(t)
	spec, err := nodes["a"].Create(ctx, emitter.CreateRequest{ID: "e1", Kind: "log", Node: "b"})
	if err != nil || spec.Node != "b" {
		t.Fatalf("create on b via a: %+v %v", spec, err)
	}
	if _, err := locals["b"].Get(ctx, "e1"); err != nil {
		t.Fatal("e1 does not run on b")
	}
	if _, err := locals["a"].Get(ctx, "e1"); err == nil {
		t.Fatal("e1 runs on a too")
	}
	// An id is the cluster's: a second create anywhere is refused.
	if _, err := nodes["a"].Create(ctx, emitter.CreateRequest{ID: "e1", Kind: "log"}); !errors.Is(err, emitter.ErrExists) {
		t.Fatalf("second create of e1: %v", err)
	}
	res, err := nodes["a"].Command(ctx, "e1", "next", nil)
	if err != nil || string(res) != `"next on e1"` {
		t.Fatalf("command via a: %s %v", res, err)
	}
	got, err := nodes["a"].Get(ctx, "e1")
	if err != nil || got.Node != "b" {
		t.Fatalf("get via a: %+v %v", got, err)
	}
	list, _ := nodes["a"].List(ctx, emitter.Filter{}, "", 0)
	if len(list) != 1 || list[0].Node != "b" {
		t.Fatalf("list via a: %+v", list)
	}
	if err := nodes["a"].Delete(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if _, err := locals["b"].Get(ctx, "e1"); err == nil {
		t.Fatal("e1 still runs on b after a delete via a")
	}
	if _, err := nodes["b"].Get(ctx, "e1"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	var ve *emitter.ValidationError
	if _, err := nodes["a"].Create(ctx, emitter.CreateRequest{Kind: "log", Node: "zz"}); !errors.As(err, &ve) || ve.Fields[0].Field != "node" {
		t.Fatalf("create on an unknown node: %v", err)
	}
}

// A failed local create frees the id it claimed.
func TestFailedCreateReleasesTheID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes, locals := twoNodes(t)
	locals["a"].fail = emitter.ErrUnknownKind
	if _, err := nodes["a"].Create(ctx, emitter.CreateRequest{ID: "e2", Kind: "nope"}); !errors.Is(err, emitter.ErrUnknownKind) {
		t.Fatalf("create: %v", err)
	}
	if _, err := nodes["b"].Create(ctx, emitter.CreateRequest{ID: "e2", Kind: "log"}); err != nil {
		t.Fatalf("the id stayed claimed: %v", err)
	}
}

// Shared emitters run once: nodes ensuring one at the same time agree on
// one owner, and only it runs the emitter.
func TestEnsureRunsSharedEmittersOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes, locals := twoNodes(t)
	var wg sync.WaitGroup
	owners := make(chan string, 2)
	for _, n := range nodes {
		wg.Go(func() {
			s, err := n.Ensure(ctx, emitter.CreateRequest{ID: "fib", Kind: "fibonacci"})
			if err != nil {
				t.Error(err)
			}
			owners <- s.Node
		})
	}
	wg.Wait()
	close(owners)
	a, b := <-owners, <-owners
	if a != b || a == "" {
		t.Fatalf("owners %q and %q", a, b)
	}
	running := 0
	for _, l := range locals {
		if _, err := l.Get(ctx, "fib"); err == nil {
			running++
		}
	}
	if running != 1 {
		t.Fatalf("fib runs on %d nodes", running)
	}
}

// A guest's emitter is entered in the registry when attached, so every
// node lists it (and serves its stream); stopped when its guest goes, it
// stays listed as stopped. An id another node owns is refused before
// anything runs, and a failed attach frees the id it claimed.
func TestAttachRegistersGuestEmitters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes, locals := twoNodes(t)
	spec, err := nodes["a"].Attach(ctx, emitter.CreateRequest{ID: "vm-1.console", Kind: "log"})
	if err != nil || spec.Node != "a" {
		t.Fatalf("attach on a: %+v %v", spec, err)
	}
	got, err := nodes["b"].Get(ctx, "vm-1.console")
	if err != nil || got.Node != "a" || got.Stopped {
		t.Fatalf("b sees %+v %v, want it running on a", got, err)
	}
	if _, err := nodes["b"].Attach(ctx, emitter.CreateRequest{ID: "vm-1.console", Kind: "log"}); !errors.Is(err, emitter.ErrExists) {
		t.Fatalf("attach of a's id on b: %v", err)
	}
	if _, err := locals["b"].Get(ctx, "vm-1.console"); err == nil {
		t.Fatal("the refused attach runs on b")
	}
	if err := nodes["a"].Stop(ctx, "vm-1.console"); err != nil {
		t.Fatal(err)
	}
	if got, err := nodes["b"].Get(ctx, "vm-1.console"); err != nil || !got.Stopped || got.Node != "a" {
		t.Fatalf("after the stop b sees %+v %v, want it stopped on a", got, err)
	}
	if _, err := nodes["a"].Attach(ctx, emitter.CreateRequest{ID: "vm-1.console", Kind: "log"}); err != nil {
		t.Fatalf("attach again (the guest is back): %v", err)
	}
	if got, _ := nodes["b"].Get(ctx, "vm-1.console"); got.Stopped {
		t.Fatal("b still sees it stopped after the guest came back")
	}
	locals["a"].fail = emitter.ErrUnknownKind
	if _, err := nodes["a"].Attach(ctx, emitter.CreateRequest{ID: "vm-2.console", Kind: "nope"}); !errors.Is(err, emitter.ErrUnknownKind) {
		t.Fatalf("attach of an unknown kind: %v", err)
	}
	if _, err := nodes["b"].Get(ctx, "vm-2.console"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("the failed attach left its id claimed: %v", err)
	}
}

// An attach the registry cannot record leaves nothing running that did
// not run before: the guest service counts it failed and would not stop
// it when the guest goes.
func TestAttachUnrecordedLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes, locals, reg := twoNodesReg(t)
	reg.failPut = emitter.ErrUnavailable
	if _, err := nodes["a"].Attach(ctx, emitter.CreateRequest{ID: "vm-3.console", Kind: "log"}); !errors.Is(err, emitter.ErrUnavailable) {
		t.Fatalf("attach with the registry down: %v", err)
	}
	if s, err := locals["a"].Get(ctx, "vm-3.console"); err == nil && !s.Stopped {
		t.Fatal("the unrecorded attach runs")
	}
	if _, err := reg.Get(ctx, "vm-3.console"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("the unrecorded attach kept its claim: %v", err)
	}
	// One that already ran (a restart's reconcile) is not stopped for it.
	reg.failPut = nil
	if _, err := nodes["a"].Attach(ctx, emitter.CreateRequest{ID: "vm-4.console", Kind: "log"}); err != nil {
		t.Fatal(err)
	}
	reg.failPut = emitter.ErrUnavailable
	if _, err := nodes["a"].Attach(ctx, emitter.CreateRequest{ID: "vm-4.console", Kind: "log"}); err != nil {
		t.Fatalf("re-attach of a running emitter with the registry down: %v", err)
	}
	if s, err := locals["a"].Get(ctx, "vm-4.console"); err != nil || s.Stopped {
		t.Fatalf("a running emitter was stopped for a registry blip: %+v %v", s, err)
	}
}
