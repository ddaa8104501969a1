package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
)

// opTimeout bounds one attach or stop, so a hung plugin cannot stall the
// guests of every other emitter for long.
const opTimeout = 30 * time.Second

type key struct{ source, name string }

type tracked struct {
	g        Guest
	state    string
	goneAt   time.Time
	attached map[string]*Attachment
}

type runningSource struct {
	key      string
	gen      int
	cancel   func()
	reported bool
}

// state is the Service loop's, touched by no other goroutine.
type state struct {
	s       *Service
	sources map[string]*runningSource
	gen     int
	rules   []Rule
	guests  map[key]*tracked
	// synced: every source reported once (or SyncWait passed); cleaned:
	// the orphan emitters were stopped after that.
	synced, cleaned bool
	dirty           bool
	pending         []event.Draft
}

func newState(s *Service) *state {
	return &state{s: s, sources: map[string]*runningSource{}, guests: map[key]*tracked{}}
}

func (st *state) apply(a applyReq) {
	keep := map[string]bool{}
	for _, ns := range a.sources {
		keep[ns.Name] = true
		if rs := st.sources[ns.Name]; rs != nil && rs.key == ns.Key {
			continue
		}
		st.stopSource(ns.Name)
		st.gen++
		ctx, cancel := context.WithCancel(st.s.ctx)
		st.sources[ns.Name] = &runningSource{key: ns.Key, gen: st.gen, cancel: cancel}
		st.s.srcWG.Add(1)
		go st.s.runSource(ctx, ns, st.gen)
	}
	for name := range st.sources {
		if !keep[name] {
			st.stopSource(name)
			st.report(update{source: name, gen: -1})
		}
	}
	st.rules = a.rules
	for _, t := range st.guests {
		st.reconcile(t)
	}
	st.dirty = true
}

func (st *state) stopSource(name string) {
	if rs := st.sources[name]; rs != nil {
		rs.cancel()
		delete(st.sources, name)
	}
}

func (st *state) stopSources() {
	for name := range st.sources {
		st.stopSource(name)
	}
}

// report takes a source's full set of guests (gen -1: the source was
// removed, all its guests are gone).
func (st *state) report(u update) {
	if u.gen >= 0 {
		rs := st.sources[u.source]
		if rs == nil || rs.gen != u.gen {
			return // from a source replaced since
		}
		rs.reported = true
	}
	seen := make(map[string]bool, len(u.guests))
	for _, g := range u.guests {
		seen[g.Name] = true
		st.seen(g)
	}
	for k, t := range st.guests {
		if k.source == u.source && t.state == StatePresent && !seen[k.name] {
			st.gone(t)
		}
	}
	st.forgetOldGone()
}

func (st *state) seen(g Guest) {
	k := key{g.Source, g.Name}
	t := st.guests[k]
	switch {
	case t == nil:
		t = &tracked{g: g, state: StatePresent, attached: map[string]*Attachment{}}
		st.guests[k] = t
	case t.state == StateGone:
		t.g, t.state = g, StatePresent
	case !t.g.same(g):
		t.g = g
		st.reconcile(t)
		st.dirty = true
		return
	default:
		if !slices.Equal(t.g.PIDs, g.PIDs) {
			t.g.PIDs = g.PIDs
			st.dirty = true
		}
		return
	}
	st.event("appeared", t, nil)
	st.reconcile(t)
	st.dirty = true
}

func (st *state) gone(t *tracked) {
	t.state, t.goneAt = StateGone, time.Now()
	st.event("gone", t, nil)
	for _, a := range t.attached {
		st.detach(t, a)
	}
	st.dirty = true
}

// forgetOldGone drops the gone guests beyond MaxGone, oldest first.
func (st *state) forgetOldGone() {
	var gone []key
	for k, t := range st.guests {
		if t.state == StateGone {
			gone = append(gone, k)
		}
	}
	if len(gone) <= st.s.opts.MaxGone {
		return
	}
	slices.SortFunc(gone, func(a, b key) int { return st.guests[a].goneAt.Compare(st.guests[b].goneAt) })
	for _, k := range gone[:len(gone)-st.s.opts.MaxGone] {
		delete(st.guests, k)
	}
	st.dirty = true
}

// desired is what the rules attach to t's guest, by emitter id.
func (st *state) desired(t *tracked) (map[string]emitter.CreateRequest, map[string]string) {
	want, rules := map[string]emitter.CreateRequest{}, map[string]string{}
	if t.state != StatePresent {
		return want, rules
	}
	for _, r := range st.rules {
		if !r.Selector.Matches(t.g) {
			continue
		}
		reqs, err := r.Render(t.g)
		if err != nil {
			st.s.log.Error("render rule", "rule", r.Name, "guest", t.g.Name, "err", err)
			continue
		}
		for _, req := range reqs {
			if _, dup := want[req.ID]; !dup {
				want[req.ID], rules[req.ID] = req, r.Name
			}
		}
	}
	return want, rules
}

// reconcile attaches what the rules want for t and stops the rest.
func (st *state) reconcile(t *tracked) {
	want, rules := st.desired(t)
	for id, a := range t.attached {
		if _, ok := want[id]; !ok {
			st.detach(t, a)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		req := want[id]
		if a := t.attached[id]; a != nil && a.State == AttachRunning && sameRequest(a.req, req) {
			continue
		}
		st.attach(t, req, rules[id])
	}
}

func sameRequest(a, b emitter.CreateRequest) bool {
	return a.Kind == b.Kind && bytes.Equal(a.Config, b.Config) && maps.Equal(a.Labels, b.Labels)
}

func (st *state) attach(t *tracked, req emitter.CreateRequest, rule string) {
	prev := t.attached[req.ID]
	a := &Attachment{ID: req.ID, Kind: req.Kind, Rule: rule, req: req}
	t.attached[req.ID] = a
	st.dirty = true
	ctx, cancel := context.WithTimeout(st.s.ctx, opTimeout)
	defer cancel()
	err := st.checkOwner(ctx, t, req.ID)
	if err == nil {
		_, err = st.s.em.Attach(ctx, req)
	}
	if err != nil {
		a.State, a.Error = AttachFailed, err.Error()
		if prev != nil && prev.State == AttachFailed && prev.Error == a.Error && sameRequest(prev.req, req) {
			// A retry that failed as before: said once already. An event
			// per retry would push the guests' history out of the
			// lifecycle stream's bounds within hours.
			return
		}
		st.s.log.Warn("attach failed", "guest", t.g.Name, "source", t.g.Source, "emitter", req.ID, "err", err)
		st.event("attach_failed", t, a)
		return
	}
	a.State = AttachRunning
	st.event("attached", t, a)
}

// errNotGuests refuses to take over an emitter someone else created.
var errNotGuests = errors.New("an emitter with this id exists and was not attached to this guest")

func (st *state) checkOwner(ctx context.Context, t *tracked, id string) error {
	spec, err := st.s.em.Get(ctx, id)
	if errors.Is(err, emitter.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if spec.Labels[LabelGuest] != t.g.Name || spec.Labels[LabelSource] != t.g.Source {
		return fmt.Errorf("%s: %w", id, errNotGuests)
	}
	return nil
}

func (st *state) detach(t *tracked, a *Attachment) {
	st.dirty = true
	if a.State == AttachFailed {
		delete(t.attached, a.ID)
		return
	}
	if a.State == AttachStopped {
		if t.state == StatePresent {
			delete(t.attached, a.ID) // no rule wants it any more
		}
		return
	}
	ctx, cancel := context.WithTimeout(st.s.ctx, opTimeout)
	defer cancel()
	if err := st.s.em.Stop(ctx, a.ID); err != nil && !errors.Is(err, emitter.ErrNotFound) {
		a.Error = err.Error()
		st.s.log.Warn("stop guest emitter", "guest", t.g.Name, "emitter", a.ID, "err", err)
	}
	a.State = AttachStopped
	st.event("detached", t, a)
	if t.state == StatePresent {
		delete(t.attached, a.ID)
	}
}

func (st *state) retryFailed() {
	for _, t := range st.guests {
		for _, a := range t.attached {
			if a.State == AttachFailed && t.state == StatePresent {
				st.reconcile(t)
				break
			}
		}
	}
}
