package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const guard = 20 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

type env struct {
	store  *memstore.Store
	runner *counterRunner
	hub    *stream.Hub
	m      *emitter.Manager
}

// newEnv returns a manager over store (a fresh one when nil).
func newEnv(t *testing.T, store *memstore.Store, opts ...emitter.ManagerOption) *env {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	log := slog.New(slog.DiscardHandler)
	hub := stream.NewHub(store, log, stream.HubOptions{})
	e := &env{store: store, runner: newRunner(), hub: hub}
	e.m = emitter.NewManager(store, e.runner, hub, log, opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := errors.Join(e.m.Close(ctx), hub.Close(ctx)); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func (e *env) create(t *testing.T, req emitter.CreateRequest) emitter.Spec {
	t.Helper()
	if req.Kind == "" {
		req.Kind = "counter"
	}
	spec, err := e.m.Create(ctxT(t), req)
	if err != nil {
		t.Fatalf("create %+v: %v", req, err)
	}
	return spec
}

func (e *env) next(t *testing.T, id string) int {
	t.Helper()
	res, err := e.m.Command(ctxT(t), id, "next", nil)
	if err != nil {
		t.Fatalf("next on %s: %v", id, err)
	}
	var r struct{ N int }
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	return r.N
}

func (e *env) durable(t *testing.T, id string) string {
	t.Helper()
	cp, err := e.store.Checkpoint(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return string(cp)
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		req    emitter.CreateRequest
		fields []string // ValidationError fields; nil: ErrUnknownKind
	}{
		{"bad id", emitter.CreateRequest{ID: "../x", Kind: "counter"}, []string{"id"}},
		{"no kind", emitter.CreateRequest{ID: "a"}, []string{"kind"}},
		{"bad label", emitter.CreateRequest{ID: "a", Kind: "counter", Labels: map[string]string{"-x": "1"}}, []string{"labels.-x"}},
		{"negative retention", emitter.CreateRequest{ID: "a", Kind: "counter", Retention: &emitter.Retention{MaxEvents: -1}}, []string{"retention"}},
		{"plugin refuses config", emitter.CreateRequest{ID: "a", Kind: "counter", Config: json.RawMessage(`{"speed":1}`)}, []string{"speed"}},
		{"unknown kind", emitter.CreateRequest{ID: "a", Kind: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			_, err := e.m.Create(ctxT(t), tc.req)
			var ve *emitter.ValidationError
			switch {
			case tc.fields == nil && !errors.Is(err, emitter.ErrUnknownKind):
				t.Fatalf("err %v, want ErrUnknownKind", err)
			case tc.fields != nil && !errors.As(err, &ve):
				t.Fatalf("err %v, want *ValidationError", err)
			case tc.fields != nil:
				var got []string
				for _, f := range ve.Fields {
					got = append(got, f.Field)
				}
				if !slices.Equal(got, tc.fields) {
					t.Fatalf("fields %v, want %v", got, tc.fields)
				}
			}
			if specs, _ := e.store.ListSpecs(ctxT(t)); len(specs) != 0 {
				t.Fatalf("refused create stored %v", specs)
			}
			if e.runner.startCount("a") != 0 {
				t.Fatal("refused create started the emitter")
			}
		})
	}
}

func TestCreateStoresAndStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	spec := e.create(t, emitter.CreateRequest{ID: "c1", Config: json.RawMessage(`{ "refuse_start" : false }`),
		Labels: map[string]string{"guest": "vm-1"}})
	if string(spec.Config) != `{"refuse_start":false}` {
		t.Fatalf("config %s, want the runner's normalized one", spec.Config)
	}
	if spec.Retention != emitter.DefaultRetention || spec.CreatedAt.IsZero() {
		t.Fatalf("spec %+v: want default retention and a creation time", spec)
	}
	stored, _ := e.store.ListSpecs(ctxT(t))
	if len(stored) != 1 || stored[0].ID != "c1" || string(stored[0].Config) != string(spec.Config) {
		t.Fatalf("stored %+v", stored)
	}
	if e.runner.sink("c1") == nil {
		t.Fatal("emitter not started")
	}
	if got, err := e.m.Get(ctxT(t), "c1"); err != nil || got.ID != "c1" {
		t.Fatalf("get: %+v %v", got, err)
	}
	st, err := e.m.Stream("c1")
	if err != nil || st.Name() != "c1" || !st.Config().Persist || st.Config().MaxEvents != emitter.DefaultRetention.MaxEvents {
		t.Fatalf("stream %v %v", st, err)
	}
	if _, err := e.m.Create(ctxT(t), emitter.CreateRequest{ID: "c1", Kind: "counter"}); !errors.Is(err, emitter.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	gen := e.create(t, emitter.CreateRequest{Retention: &emitter.Retention{}})
	if gen.ID == "" || gen.Retention.Persist {
		t.Fatalf("generated %+v: want an id and the requested retention", gen)
	}
	if _, err := e.m.Get(ctxT(t), "nope"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
}

func TestCreateThatCannotStartLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, err := e.m.Create(ctxT(t), emitter.CreateRequest{ID: "x", Kind: "counter", Config: json.RawMessage(`{"refuse_start":true}`)})
	if !errors.Is(err, errStart) {
		t.Fatalf("create: %v, want the runner's start error", err)
	}
	if specs, _ := e.store.ListSpecs(ctxT(t)); len(specs) != 0 {
		t.Fatalf("spec kept: %v", specs)
	}
	if _, ok := e.hub.Get("x"); ok {
		t.Fatal("stream kept open")
	}
	e.create(t, emitter.CreateRequest{ID: "x"}) // the id is free again
}

func TestEnsureIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	specs := make([]emitter.Spec, 8)
	for i := range specs {
		wg.Go(func() {
			var err error
			specs[i], err = e.m.Ensure(context.Background(), emitter.CreateRequest{ID: "shared", Kind: "counter"})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, s := range specs {
		if s.ID != "shared" || !s.CreatedAt.Equal(specs[0].CreatedAt) {
			t.Fatalf("ensure returned %+v and %+v", s, specs[0])
		}
	}
	if n := e.runner.startCount("shared"); n != 1 {
		t.Fatalf("started %d times, want once", n)
	}
	again, err := e.m.Ensure(ctxT(t), emitter.CreateRequest{ID: "shared", Kind: "counter", Labels: map[string]string{"a": "b"}})
	if err != nil || again.Labels != nil {
		t.Fatalf("ensure of an existing id changed it: %+v %v", again, err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for i := range 7 {
		e.create(t, emitter.CreateRequest{ID: fmt.Sprintf("e%d", i),
			Labels: map[string]string{"guest": fmt.Sprintf("vm-%d", i%2), "tier": "a"}})
	}
	ids := func(specs []emitter.Spec) []string {
		var out []string
		for _, s := range specs {
			out = append(out, s.ID)
		}
		return out
	}
	var pages [][]string
	after := ""
	for range 10 {
		page, next := e.m.List(ctxT(t), emitter.Filter{Labels: map[string]string{"guest": "vm-0"}}, after, 3)
		pages = append(pages, ids(page))
		if next == "" {
			break
		}
		after = next
	}
	if fmt.Sprint(pages) != "[[e0 e2 e4] [e6]]" {
		t.Fatalf("pages %v, want [[e0 e2 e4] [e6]]", pages)
	}
	for _, tc := range []struct {
		f    emitter.Filter
		want string
	}{
		{emitter.Filter{}, "[e0 e1 e2 e3 e4 e5 e6]"},
		{emitter.Filter{Kind: "counter", Labels: map[string]string{"guest": "vm-1", "tier": "a"}}, "[e1 e3 e5]"},
		{emitter.Filter{Kind: "other"}, "[]"},
		{emitter.Filter{Labels: map[string]string{"tier": "b"}}, "[]"},
	} {
		page, next := e.m.List(ctxT(t), tc.f, "", 0)
		if fmt.Sprint(ids(page)) != tc.want || next != "" {
			t.Fatalf("list %+v: %v next %q, want %s", tc.f, ids(page), next, tc.want)
		}
	}
	if page, next := e.m.List(ctxT(t), emitter.Filter{}, "e4", 2); fmt.Sprint(ids(page)) != "[e5 e6]" || next != "" {
		t.Fatalf("last page %v next %q", ids(page), next)
	}
	// The emitter a cursor came from may go away between pages.
	page, next := e.m.List(ctxT(t), emitter.Filter{}, "", 2)
	if err := e.m.Delete(ctxT(t), page[1].ID); err != nil {
		t.Fatal(err)
	}
	if rest, _ := e.m.List(ctxT(t), emitter.Filter{}, next, 0); fmt.Sprint(ids(rest)) != "[e2 e3 e4 e5 e6]" {
		t.Fatalf("after deleting the cursor's emitter: %v", ids(rest))
	}
}

func TestDeletePurges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.create(t, emitter.CreateRequest{ID: "d"})
	e.create(t, emitter.CreateRequest{ID: "keep"})
	e.next(t, "d")
	e.next(t, "keep")
	if err := e.m.Delete(ctxT(t), "d"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.runner.stops, "d") || e.runner.sink("d") != nil {
		t.Fatal("plugin instance not stopped")
	}
	if head, _ := e.store.Head(ctxT(t), "d"); head != 0 {
		t.Fatalf("history head %d kept", head)
	}
	if cp := e.durable(t, "d"); cp != "" {
		t.Fatalf("checkpoint %q kept", cp)
	}
	if specs, _ := e.store.ListSpecs(ctxT(t)); len(specs) != 1 || specs[0].ID != "keep" {
		t.Fatalf("specs %v, want only keep", specs)
	}
	if _, ok := e.hub.Get("d"); ok {
		t.Fatal("stream still open")
	}
	if err := e.m.Delete(ctxT(t), "d"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := e.m.Command(ctxT(t), "d", "next", nil); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("command after delete: %v, want ErrNotFound", err)
	}
	if n := e.next(t, "keep"); n != 2 {
		t.Fatalf("other emitter counted %d, want 2", n)
	}
}
