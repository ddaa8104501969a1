package emitter_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/internal/memstore"
)

// Attach and Stop are what guests rely on: attaching the same request
// twice (a restart) starts nothing twice; Stop keeps the spec, stream,
// history and checkpoint, and Restore leaves a stopped emitter stopped;
// Attach runs it again where it was, restarts it when its labels or
// config change, and refuses an id of another kind.
func TestAttachAndStopKeepTheEmitter(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	e := newEnv(t, store)
	req := emitter.CreateRequest{ID: "g.r", Kind: "counter", Labels: map[string]string{"guest": "g"}}
	first, err := e.m.Attach(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.next(t, "g.r"); n != 1 {
		t.Fatalf("next = %d, want 1", n)
	}
	again, err := e.m.Attach(ctxT(t), req)
	if err != nil || e.runner.startCount("g.r") != 1 || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("second attach: %+v %v, %d starts; want the same emitter, started once", again, err, e.runner.startCount("g.r"))
	}

	if err := e.m.Stop(ctxT(t), "g.r"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Stop(ctxT(t), "g.r"); err != nil {
		t.Fatalf("second stop: %v, want a no-op", err)
	}
	if e.runner.sink("g.r") != nil {
		t.Fatal("the stopped emitter still runs")
	}
	sp, err := e.m.Get(ctxT(t), "g.r")
	if err != nil || !sp.Stopped {
		t.Fatalf("get after stop: %+v %v, want it kept, stopped", sp, err)
	}
	st, err := e.m.Stream("g.r")
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := st.ReadAfter(ctxT(t), 0, 10); err != nil || len(evs) == 0 {
		t.Fatalf("history after stop: %d events, %v; want it kept", len(evs), err)
	}
	if cp := e.durable(t, "g.r"); cp != "1" {
		t.Fatalf("checkpoint after stop %q, want 1", cp)
	}

	// A restart: Restore leaves it stopped; Attach runs it from its
	// checkpoint, as the same emitter.
	r := newEnv(t, store)
	if err := r.m.Restore(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if r.runner.startCount("g.r") != 0 {
		t.Fatal("Restore ran a stopped emitter")
	}
	back, err := r.m.Attach(ctxT(t), req)
	if err != nil || back.Stopped || !back.CreatedAt.Equal(first.CreatedAt) || r.runner.startCount("g.r") != 1 {
		t.Fatalf("attach after the restart: %+v %v", back, err)
	}
	if n := r.next(t, "g.r"); n != 2 {
		t.Fatalf("next after the restart = %d, want 2 (from the kept checkpoint)", n)
	}

	relabeled := req
	relabeled.Labels = map[string]string{"guest": "g", "tier": "gold"}
	sp, err = r.m.Attach(ctxT(t), relabeled)
	if err != nil || !maps.Equal(sp.Labels, relabeled.Labels) || r.runner.startCount("g.r") != 2 {
		t.Fatalf("attach with new labels: %+v %v, %d starts; want a restart with them", sp, err, r.runner.startCount("g.r"))
	}
	if _, err := r.m.Attach(ctxT(t), emitter.CreateRequest{ID: "g.r", Kind: "other"}); !errors.Is(err, emitter.ErrExists) {
		t.Fatalf("attach of another kind: %v, want ErrExists", err)
	}
	if err := r.m.Stop(ctxT(t), "nope"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("stop of an unknown id: %v, want ErrNotFound", err)
	}
}
