package guest

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
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

// memEmitters keeps specs in memory, like the Manager's Attach and Stop,
// and fails every attach of a kind while fail holds an error for it.
type memEmitters struct {
	mu       sync.Mutex
	specs    map[string]emitter.Spec
	attaches int
	fail     map[string]error
}

func newMemEmitters() *memEmitters {
	return &memEmitters{specs: map[string]emitter.Spec{}, fail: map[string]error{}}
}

func (m *memEmitters) Attach(_ context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attaches++
	if err := m.fail[req.Kind]; err != nil {
		return emitter.Spec{}, err
	}
	sp := emitter.Spec{ID: req.ID, Kind: req.Kind, Config: req.Config, Labels: maps.Clone(req.Labels)}
	m.specs[req.ID] = sp
	return sp, nil
}

func (m *memEmitters) Stop(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp, ok := m.specs[id]
	if !ok {
		return emitter.ErrNotFound
	}
	sp.Stopped = true
	m.specs[id] = sp
	return nil
}

func (m *memEmitters) Get(_ context.Context, id string) (emitter.Spec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sp, ok := m.specs[id]; ok {
		return sp, nil
	}
	return emitter.Spec{}, emitter.ErrNotFound
}

func (m *memEmitters) List(context.Context, emitter.Filter, string, int) ([]emitter.Spec, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.specs)), ""
}

func (m *memEmitters) set(kind string, err error) (attaches int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail[kind] = err
	return m.attaches
}

func (m *memEmitters) attachCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attaches
}

// fixed is a source of guests that never change.
type fixed []Guest

func (f fixed) Run(ctx context.Context, report func([]Guest)) error {
	report(f)
	<-ctx.Done()
	return nil
}

// lifecycle lists the guests stream's events as "type error".
func lifecycle(t *testing.T, st *stream.Stream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := st.ReadAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, ev := range evs {
		var l Lifecycle
		if err := json.Unmarshal(ev.Data, &l); err != nil {
			t.Fatal(err)
		}
		out[i] = ev.Type + " " + l.Error
	}
	return out
}

// waitUntil polls cond (bounded: a hang guard, not a timing assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 2000 {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A failed attachment is retried, but told once per distinct failure: a
// lifecycle event per retry would push every guest's history out of the
// stream's bounds. A new error is told again, and success as attached.
func TestAttachFailedIsToldOncePerError(t *testing.T) {
	t.Parallel()
	hub := stream.NewHub(memstore.New(), nil, stream.HubOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer func() { _ = hub.Close(ctx) }()
	events, err := hub.Open(ctx, StreamName, StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	em := newMemEmitters()
	em.set("stats", errors.New("no pid"))
	s := New(em, Options{Events: events, RetryEvery: 5 * time.Millisecond})
	defer func() { _ = s.Close(ctx) }()
	rule := Rule{Name: "r", Emitters: []EmitterTemplate{{Kind: "stats"}}}
	if err := s.Apply(ctx, []NamedSource{{Name: "src", Key: "1", Source: fixed{{Name: "g"}}}}, []Rule{rule}); err != nil {
		t.Fatal(err)
	}

	waitUntil(t, "five attempts", func() bool { return em.attachCount() >= 5 })
	n := em.set("stats", errors.New("pid 7 is gone"))
	waitUntil(t, "five attempts with the new error", func() bool { return em.attachCount() >= n+5 })
	em.set("stats", nil)
	// The view is published after the step's events: once it shows the
	// emitter running, every event of the attempts is in the stream.
	waitUntil(t, "g's emitter runs", func() bool {
		v := s.Guests()
		return len(v) == 1 && len(v[0].Emitters) == 1 && v[0].Emitters[0].State == AttachRunning && v[0].Emitters[0].Error == ""
	})
	want := []string{"appeared ", "attach_failed no pid", "attach_failed pid 7 is gone", "attached "}
	if got := lifecycle(t, events); !slices.Equal(got, want) {
		t.Fatalf("lifecycle events %q, want %q", got, want)
	}
}

// state is how emitter id of m is: missing, stopped, or running with its config.
func (m *memEmitters) state(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp, ok := m.specs[id]
	switch {
	case !ok:
		return "missing"
	case sp.Stopped:
		return "stopped"
	}
	return "running " + string(sp.Config)
}

// A reload replaces sources and rules without a restart: a new source's
// guests get their emitters, a removed source's guests are gone with
// their emitters stopped (kept, not deleted), and a changed rule
// re-renders the emitters of the guests it matches.
func TestApplyReloadsSourcesAndRules(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	em := newMemEmitters()
	s := New(em, Options{})
	defer func() { _ = s.Close(ctx) }()
	a := NamedSource{Name: "a", Key: "1", Source: fixed{{Name: "g1"}}}
	b := NamedSource{Name: "b", Key: "1", Source: fixed{{Name: "g2", Labels: map[string]string{"tier": "gold"}}}}
	rule := func(cfg string) Rule {
		return Rule{Name: "r", Emitters: []EmitterTemplate{{Kind: "k", Config: map[string]any{"x": cfg}}}}
	}
	apply := func(rules []Rule, srcs ...NamedSource) {
		t.Helper()
		if err := s.Apply(ctx, srcs, rules); err != nil {
			t.Fatal(err)
		}
	}
	states := func(want map[string]string) func() bool {
		return func() bool {
			for id, st := range want {
				if em.state(id) != st {
					return false
				}
			}
			return true
		}
	}

	apply([]Rule{rule("{guest}")}, a)
	waitUntil(t, "g1.r runs", states(map[string]string{"g1.r": `running {"x":"g1"}`}))
	apply([]Rule{rule("{guest}")}, a, b)
	waitUntil(t, "g2.r runs", states(map[string]string{"g1.r": `running {"x":"g1"}`, "g2.r": `running {"x":"g2"}`}))
	apply([]Rule{rule("{guest}-{labels.tier}")}, b)
	waitUntil(t, "g1.r stopped, g2.r re-rendered", states(map[string]string{"g1.r": "stopped", "g2.r": `running {"x":"g2-gold"}`}))
	waitUntil(t, "g1 listed gone", func() bool {
		for _, v := range s.Guests() {
			if v.Name == "g1" {
				return v.State == StateGone && len(v.Emitters) == 1 && v.Emitters[0].State == AttachStopped
			}
		}
		return false
	})
}

// After a restart, once every source has reported, an emitter the
// Service attached to a guest that went away meanwhile (restored running
// from the store) is stopped, one whose guest is still there is attached
// again in place, and an emitter nobody attached to a guest is left alone.
func TestRestartStopsEmittersOfGuestsGoneMeanwhile(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	em := newMemEmitters()
	for _, sp := range []emitter.Spec{
		{ID: "g1.r", Kind: "k", Config: []byte(`{}`), Labels: map[string]string{LabelGuest: "g1", LabelSource: "a", LabelRule: "r"}},
		{ID: "g2.r", Kind: "k", Config: []byte(`{}`), Labels: map[string]string{LabelGuest: "g2", LabelSource: "a", LabelRule: "r"}},
		{ID: "mine", Kind: "k", Config: []byte(`{}`)},
	} {
		em.specs[sp.ID] = sp
	}
	s := New(em, Options{})
	defer func() { _ = s.Close(ctx) }()
	rule := Rule{Name: "r", Emitters: []EmitterTemplate{{Kind: "k"}}}
	if err := s.Apply(ctx, []NamedSource{{Name: "a", Key: "1", Source: fixed{{Name: "g2"}}}}, []Rule{rule}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "g1.r stopped", func() bool { return em.state("g1.r") == "stopped" })
	if st := em.state("g2.r"); st != "running {}" {
		t.Fatalf("g2.r %s, want running", st)
	}
	if st := em.state("mine"); st != "running {}" {
		t.Fatalf("an emitter of no guest was touched: %s", st)
	}
	em.mu.Lock()
	n := len(em.specs)
	em.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d emitters after the restart, want the same 3", n)
	}
}
