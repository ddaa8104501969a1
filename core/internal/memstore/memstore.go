// Package memstore is an in-memory stream.Store and emitter.SpecStore for
// unit tests of the core packages. It keeps the contracts the bbolt store
// keeps (heads only move forward, events and checkpoint of one Append land
// together, commits apply in call order) without durability, and lets a
// test inject commit failures or hold commits at a gate.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

var (
	_ stream.Store      = (*Store)(nil)
	_ emitter.SpecStore = (*Store)(nil)
)

// ErrInjected is what Commit returns while failures are switched on.
var ErrInjected = errors.New("memstore: injected commit failure")

// ErrFenced refuses an append that follows a failed one of its stream.
var ErrFenced = fmt.Errorf("memstore: append follows a failed one: %w", stream.ErrStoreUnavailable)

// PruneCall records one Prune.
type PruneCall struct {
	Stream    string
	Keep      int
	OlderThan time.Time
}

// Store is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	history map[string][]*event.Event // ascending by seq
	heads   map[string]uint64
	cps     map[string][]byte
	specs   map[string]emitter.Spec
	commits int
	fail    error
	gate    *Gate
	prunes  []PruneCall
	// fenced is, per stream, the first seq of a failed append with
	// events: later appends after it are refused (stream.Submitter).
	fenced  map[string]uint64
	tail    chan struct{} // closed when the last Submit's commit ended
	submits int
}

// New returns an empty store.
func New() *Store {
	return &Store{
		history: map[string][]*event.Event{},
		heads:   map[string]uint64{},
		cps:     map[string][]byte{},
		specs:   map[string]emitter.Spec{},
		fenced:  map[string]uint64{},
	}
}

// FailCommits makes every following Commit return err (nil: succeed again).
func (s *Store) FailCommits(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// Gate holds the commits of a Store until a test lets them through.
type Gate struct {
	// Entered receives each held commit's Append as it starts waiting.
	Entered chan stream.Append
	tokens  chan struct{}
	open    chan struct{}
	once    sync.Once
	store   *Store
}

// Allow lets one held (or the next) commit proceed.
func (g *Gate) Allow() { g.tokens <- struct{}{} }

// Release lets every commit through and stops holding new ones.
func (g *Gate) Release() {
	g.once.Do(func() {
		g.store.mu.Lock()
		if g.store.gate == g {
			g.store.gate = nil
		}
		g.store.mu.Unlock()
		close(g.open)
	})
}

// Hold makes every following Commit wait at the returned gate (or until
// its ctx ends, returning ctx's error).
func (s *Store) Hold() *Gate {
	g := &Gate{
		Entered: make(chan stream.Append, 4096),
		tokens:  make(chan struct{}, 4096),
		open:    make(chan struct{}),
		store:   s,
	}
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return g
}

// Commits returns how many Commits succeeded.
func (s *Store) Commits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits
}

// Prunes returns the Prune calls so far.
func (s *Store) Prunes() []PruneCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PruneCall(nil), s.prunes...)
}

// Commit implements stream.Committer.
func (s *Store) Commit(ctx context.Context, a stream.Append) error {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		g.Entered <- a
		select {
		case <-g.tokens:
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fenceLocked(a); err != nil {
		return err
	}
	head := max(s.heads[a.Stream], a.Head)
	for _, e := range a.Events {
		s.history[a.Stream] = append(s.history[a.Stream], e)
		head = max(head, e.Seq)
	}
	h := s.history[a.Stream]
	sort.SliceStable(h, func(i, j int) bool { return h[i].Seq < h[j].Seq })
	if head > 0 {
		s.heads[a.Stream] = head
	}
	if a.Checkpoint != nil {
		s.cps[a.Checkpoint.Emitter] = append([]byte(nil), a.Checkpoint.Value...)
	}
	s.commits++
	return nil
}

// fenceLocked fails a while failures are injected, and refuses it when
// its events come after those of a failed append of its stream, as the
// bolt store does (s.mu held).
func (s *Store) fenceLocked(a stream.Append) error {
	err := s.fail
	if len(a.Events) == 0 {
		return err
	}
	first := a.Events[0].Seq
	if failed, ok := s.fenced[a.Stream]; ok && err == nil {
		if first > failed {
			err = ErrFenced
		} else {
			delete(s.fenced, a.Stream)
		}
	}
	if err != nil {
		if failed, ok := s.fenced[a.Stream]; !ok || first < failed {
			s.fenced[a.Stream] = first
		}
	}
	return err
}

// Submit implements stream.Submitter: commits run in the order of their
// Submits, each on a goroutine of its own once the one before it ended.
func (s *Store) Submit(ctx context.Context, a stream.Append) (wait func() error, err error) {
	return s.SubmitVia(ctx, a, s.Commit)
}

// SubmitVia is Submit with commit in place of Commit, in the same order:
// for a test's wrapper that overrides Commit (a wrapper embedding Store
// would otherwise have Submit bypass it).
func (s *Store) SubmitVia(ctx context.Context, a stream.Append, commit func(context.Context, stream.Append) error) (wait func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	prev, mine := s.tail, make(chan struct{})
	s.tail = mine
	s.submits++
	s.mu.Unlock()
	res := make(chan error, 1)
	go func() {
		defer close(mine)
		if prev != nil {
			<-prev
		}
		res <- commit(ctx, a)
	}()
	return func() error { return <-res }, nil
}

// Submits returns how many appends were submitted (Submit) so far.
func (s *Store) Submits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.submits
}

// ReadAfter implements stream.History.
func (s *Store) ReadAfter(_ context.Context, name string, after uint64, limit int) ([]*event.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*event.Event
	for _, e := range s.history[name] {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// ReadBefore implements stream.History.
func (s *Store) ReadBefore(_ context.Context, name string, before uint64, limit int) ([]*event.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[name]
	var out []*event.Event
	for i := len(h) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || h[i].Seq < before {
			out = append(out, h[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Head implements stream.History.
func (s *Store) Head(_ context.Context, name string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heads[name], nil
}

// Prune implements stream.Pruner.
func (s *Store) Prune(_ context.Context, name string, keep int, olderThan time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunes = append(s.prunes, PruneCall{Stream: name, Keep: keep, OlderThan: olderThan})
	h := s.history[name]
	var kept []*event.Event
	for i, e := range h {
		if keep > 0 && len(h)-i > keep {
			continue
		}
		if !olderThan.IsZero() && e.Time.Before(olderThan) {
			continue
		}
		kept = append(kept, e)
	}
	s.history[name] = kept
	return len(h) - len(kept), nil
}

// DeleteStream implements stream.Store.
func (s *Store) DeleteStream(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.history, name)
	delete(s.heads, name)
	return nil
}

// PutSpec implements emitter.SpecStore.
func (s *Store) PutSpec(_ context.Context, spec emitter.Spec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs[spec.ID] = spec
	return nil
}

// DeleteSpec implements emitter.SpecStore.
func (s *Store) DeleteSpec(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.specs, id)
	delete(s.cps, id)
	return nil
}

// ListSpecs implements emitter.SpecStore.
func (s *Store) ListSpecs(context.Context) ([]emitter.Spec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]emitter.Spec, 0, len(s.specs))
	for _, sp := range s.specs {
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Checkpoint implements emitter.SpecStore.
func (s *Store) Checkpoint(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cp, ok := s.cps[id]; ok {
		return append([]byte(nil), cp...), nil
	}
	return nil, nil
}
