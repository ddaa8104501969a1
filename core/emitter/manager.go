package emitter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/stream"
)

// DefaultRetention is what an emitter keeps when its request says nothing.
var DefaultRetention = Retention{Persist: true, MaxEvents: 10000, MaxAge: Duration(24 * time.Hour)}

// MaxLabels bounds the labels of one emitter.
const MaxLabels = 32

var (
	idPattern    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)
	labelPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,62}$`)
)

// ErrExists is returned when creating an emitter whose id is taken.
var ErrExists = errors.New("emitter already exists")

// CreateRequest asks for a new emitter. ID is optional (generated).
type CreateRequest struct {
	ID        string
	Kind      string
	Config    json.RawMessage
	Labels    map[string]string
	Retention *Retention
	// Tenant owns the emitter (empty: shared).
	Tenant string
	// Node, in cluster mode, is the node that runs the emitter (empty: the
	// node asked). The Manager itself runs everything locally.
	Node string
}

// Filter selects emitters in List. Empty fields match everything.
type Filter struct {
	Kind   string
	Labels map[string]string
}

// Manager owns the emitters: it stores their specs, runs them through a
// Runner, routes their batches into streams, and serializes commands.
type Manager struct {
	specs  SpecStore
	runner Runner
	hub    *stream.Hub
	log    *slog.Logger
	obs    CommandObserver

	mu       sync.RWMutex
	emitters map[string]*instance
	// creating holds the ids a Create is working on; the channel closes
	// when it is done, so Ensure waits instead of starting a twin.
	creating map[string]chan struct{}
	// lifecycle orders Delete, Stop and Attach of one manager: each
	// swaps an instance and rewrites or removes its spec, which must not
	// interleave (a Stop after a Delete would store the spec again).
	lifecycle sync.Mutex
}

// instance is a running emitter and the sink its plugin delivers to.
type instance struct {
	spec   Spec
	stream *stream.Stream
	specs  SpecStore

	// mu orders commands and deliveries with the checkpoint they move.
	mu     sync.Mutex
	latest []byte
	// stored is the checkpoint last read from the store: what a failed
	// commit rolls latest back to when no commit of this process has
	// stored one since (see recoverLocked).
	stored []byte

	// cmds queues the commands waiting for the instance (see Command).
	cmds commandQueue
}

// NewManager returns a manager; call Restore to start the stored emitters.
func NewManager(specs SpecStore, runner Runner, hub *stream.Hub, log *slog.Logger, opts ...ManagerOption) *Manager {
	m := &Manager{specs: specs, runner: runner, hub: hub, log: log, obs: noObserver{},
		emitters: map[string]*instance{}, creating: map[string]chan struct{}{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Restore starts every stored emitter from its checkpoint. One emitter that
// cannot start does not stop the others; their errors are joined.
func (m *Manager) Restore(ctx context.Context) error {
	specs, err := m.specs.ListSpecs(ctx)
	if err != nil {
		return fmt.Errorf("restore emitters: %w", err)
	}
	var errs []error
	for _, s := range specs {
		if err := m.start(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("restore emitter %s (%s): %w", s.ID, s.Kind, err))
		}
	}
	return errors.Join(errs...)
}

// Create validates req through the kind's plugin, stores the spec and
// starts the emitter.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (Spec, error) {
	if err := checkRequest(&req); err != nil {
		return Spec{}, err
	}
	release, err := m.reserve(req.ID)
	if err != nil {
		return Spec{}, err
	}
	defer release()
	cfg, err := m.runner.Validate(ctx, req.Kind, req.Config)
	if err != nil {
		return Spec{}, fmt.Errorf("create %s emitter: %w", req.Kind, err)
	}
	spec := Spec{ID: req.ID, Kind: req.Kind, Config: cfg, Labels: req.Labels,
		Retention: DefaultRetention, CreatedAt: time.Now().UTC(), Tenant: req.Tenant}
	if req.Retention != nil {
		spec.Retention = *req.Retention
	}
	if err := m.specs.PutSpec(ctx, spec); err != nil {
		return Spec{}, fmt.Errorf("store emitter %s: %w", spec.ID, err)
	}
	if err := m.start(ctx, spec); err != nil {
		return Spec{}, errors.Join(err, m.specs.DeleteSpec(ctx, spec.ID))
	}
	return spec, nil
}

// Ensure creates the emitter id unless it exists (the shared /magic, /time
// and /fib instances).
func (m *Manager) Ensure(ctx context.Context, req CreateRequest) (Spec, error) {
	for {
		m.mu.RLock()
		inst, ok := m.emitters[req.ID]
		pending := m.creating[req.ID]
		m.mu.RUnlock()
		if ok {
			return inst.spec, nil
		}
		if pending == nil {
			spec, err := m.Create(ctx, req)
			if errors.Is(err, ErrExists) {
				continue // a concurrent Create won: return its emitter
			}
			return spec, err
		}
		select {
		case <-pending:
		case <-ctx.Done():
			return Spec{}, fmt.Errorf("ensure %s: %w", req.ID, ctx.Err())
		}
	}
}

// reserve claims id for one Create; concurrent Creates of an id would
// otherwise both store and start it.
func (m *Manager) reserve(id string) (release func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.emitters[id]; ok || m.creating[id] != nil {
		return nil, fmt.Errorf("create %s: %w", id, ErrExists)
	}
	done := make(chan struct{})
	m.creating[id] = done
	return func() {
		m.mu.Lock()
		delete(m.creating, id)
		m.mu.Unlock()
		close(done)
	}, nil
}

func checkRequest(req *CreateRequest) error {
	var fields []FieldError
	if req.ID == "" {
		req.ID = NewID()
	} else if !idPattern.MatchString(req.ID) {
		fields = append(fields, FieldError{"id", "must match " + idPattern.String()})
	}
	if req.Kind == "" {
		fields = append(fields, FieldError{"kind", "is required"})
	}
	if len(req.Labels) > MaxLabels {
		fields = append(fields, FieldError{"labels", fmt.Sprintf("must be at most %d", MaxLabels)})
	}
	for k, v := range req.Labels {
		if !labelPattern.MatchString(k) || len(v) > 256 {
			fields = append(fields, FieldError{"labels." + k, "key must match " + labelPattern.String() + ", value at most 256 bytes"})
		}
	}
	if r := req.Retention; r != nil && (r.MaxEvents < 0 || r.MaxAge < 0) {
		fields = append(fields, FieldError{"retention", "max_events and max_age must not be negative"})
	}
	if len(req.Config) == 0 {
		req.Config = json.RawMessage(`{}`)
	}
	if len(fields) > 0 {
		sort.Slice(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
		return &ValidationError{Fields: fields}
	}
	return nil
}

// NewID returns a fresh emitter id ("em-" and 16 hex digits).
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "em-" + hex.EncodeToString(b[:])
}

func (m *Manager) start(ctx context.Context, spec Spec) error {
	st, err := m.hub.Open(ctx, spec.ID, streamConfig(spec))
	if err != nil {
		return err
	}
	cp, err := m.specs.Checkpoint(ctx, spec.ID)
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	inst := &instance{spec: spec, stream: st, specs: m.specs, latest: cp, stored: cp}
	m.mu.Lock()
	m.emitters[spec.ID] = inst
	m.mu.Unlock()
	if spec.Stopped {
		return nil // kept for its history; Attach runs it again
	}
	if err := m.runner.Start(ctx, spec.Kind, spec.ID, spec.Config, inst); err != nil {
		m.mu.Lock()
		delete(m.emitters, spec.ID)
		m.mu.Unlock()
		return errors.Join(fmt.Errorf("start: %w", err), m.hub.Remove(ctx, spec.ID, false))
	}
	return nil
}

func streamConfig(spec Spec) stream.Config {
	r := spec.Retention
	return stream.Config{Persist: r.Persist, MaxEvents: r.MaxEvents, MaxAge: time.Duration(r.MaxAge), Kind: spec.Kind}
}

func (m *Manager) lookup(id string) (*instance, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	inst, ok := m.emitters[id]
	if !ok {
		return nil, fmt.Errorf("emitter %q: %w", id, ErrNotFound)
	}
	return inst, nil
}

// Get returns an emitter's spec.
func (m *Manager) Get(_ context.Context, id string) (Spec, error) {
	inst, err := m.lookup(id)
	if err != nil {
		return Spec{}, err
	}
	return inst.spec, nil
}

// Stream returns the stream of an emitter.
func (m *Manager) Stream(id string) (*stream.Stream, error) {
	inst, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return inst.stream, nil
}

// List returns the emitters matching f, oldest first, after the cursor
// (exclusive; "" from the start; an emitter id also works), at most limit
// (<= 0: all). next is the cursor of the following page ("" at the end).
// A next cursor names a position (creation time and id), not an emitter,
// so deleting the emitter it came from does not lose the rest of the list.
func (m *Manager) List(_ context.Context, f Filter, after string, limit int) (page []Spec, next string) {
	m.mu.RLock()
	all := make([]Spec, 0, len(m.emitters))
	for _, inst := range m.emitters {
		all = append(all, inst.spec)
	}
	m.mu.RUnlock()
	return Paginate(all, f, after, limit)
}

// Paginate is List over any set of specs (a cluster's registry): it
// filters, sorts and cuts all (which it may reorder) the way List does.
func Paginate(all []Spec, f Filter, after string, limit int) (page []Spec, next string) {
	n := 0
	for _, s := range all {
		if f.matches(s) {
			all[n] = s
			n++
		}
	}
	all = all[:n]
	sort.Slice(all, func(i, j int) bool { return listBefore(all[i].CreatedAt, all[i].ID, all[j].CreatedAt, all[j].ID) })
	start := 0
	if at, id, ok := parseCursor(after); ok {
		start = sort.Search(len(all), func(i int) bool { return listBefore(at, id, all[i].CreatedAt, all[i].ID) })
	} else if after != "" {
		// A bare emitter id works too (what a person types).
		start = len(all)
		for i, s := range all {
			if s.ID == after {
				start = i + 1
				break
			}
		}
	}
	page = all[start:]
	if limit > 0 && len(page) > limit {
		page = page[:limit]
		last := page[len(page)-1]
		next = strconv.FormatInt(last.CreatedAt.UnixNano(), 10) + "." + last.ID
	}
	return page, next
}

// listBefore orders emitters by creation time, then id.
func listBefore(at time.Time, id string, bt time.Time, bid string) bool {
	if !at.Equal(bt) {
		return at.Before(bt)
	}
	return id < bid
}

func parseCursor(c string) (time.Time, string, bool) {
	nanos, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", false
	}
	return time.Unix(0, n).UTC(), id, true
}

func (f Filter) matches(s Spec) bool {
	if f.Kind != "" && s.Kind != f.Kind {
		return false
	}
	for k, v := range f.Labels {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// Delete stops an emitter and removes its spec, checkpoint and history.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	m.mu.Lock()
	inst, ok := m.emitters[id]
	delete(m.emitters, id) // in the same critical section: one Delete wins
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("emitter %q: %w", id, ErrNotFound)
	}
	var stopErr error
	if !inst.spec.Stopped {
		stopErr = m.runner.Stop(ctx, inst.spec.Kind, id)
	}
	return errors.Join(
		stopErr,
		m.hub.Remove(ctx, id, true),
		m.specs.DeleteSpec(ctx, id),
	)
}

// Close stops every emitter's plugin instance (the specs stay stored).
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	all := m.emitters
	m.emitters = map[string]*instance{}
	m.mu.Unlock()
	var errs []error
	for id, inst := range all {
		if inst.spec.Stopped {
			continue
		}
		if err := m.runner.Stop(ctx, inst.spec.Kind, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Deliver implements Sink for the instance's plugin run.
func (inst *instance) Deliver(ctx context.Context, b Batch) error {
	inst.mu.Lock()
	wait, err := inst.enqueueLocked(b)
	inst.mu.Unlock()
	if err != nil {
		return err
	}
	if err := wait(ctx); err != nil {
		inst.resync()
		return err
	}
	return nil
}

// resync drops a checkpoint whose commit failed: the next command must
// start from what is durable, not from state that was never stored. It
// needs no read of the store (which fails too while its disk is full):
// the stream knows the newest checkpoint it committed.
func (inst *instance) resync() {
	inst.mu.Lock()
	inst.recoverLocked()
	inst.mu.Unlock()
}

// recoverLocked takes the mark a failed commit left on the stream and
// rolls latest back to the newest durable checkpoint (inst.mu held). The
// stream refuses appends with a checkpoint until this ran, so nothing
// computed from the failed state is ever stored.
func (inst *instance) recoverLocked() {
	cp, failed := inst.stream.Recover()
	if !failed {
		return
	}
	if cp != nil {
		inst.latest = cp.Value
	} else {
		inst.latest = inst.stored
	}
}

// Checkpoint implements Sink: the durable checkpoint a restart resumes
// from. The in-memory latest is dropped: what was not durable is replayed.
func (inst *instance) Checkpoint(ctx context.Context) ([]byte, error) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	// Let commits already queued land first, so the checkpoint read is the
	// newest that will ever be durable for what was accepted so far.
	if _, wait, err := inst.stream.Enqueue(nil, nil); err == nil {
		if err := wait(ctx); err != nil {
			return nil, err
		}
	}
	cp, err := inst.specs.Checkpoint(ctx, inst.spec.ID)
	if err != nil {
		return nil, err
	}
	inst.stream.Recover() // what the store holds is what a failure leaves
	inst.latest, inst.stored = cp, cp
	return cp, nil
}

func (inst *instance) enqueueLocked(b Batch) (func(context.Context) error, error) {
	var cp *stream.Checkpoint
	if b.Checkpoint != nil {
		cp = &stream.Checkpoint{Emitter: inst.spec.ID, Value: b.Checkpoint}
	}
	_, wait, err := inst.stream.Enqueue(b.Events, cp)
	if err != nil {
		return nil, err
	}
	if b.Checkpoint != nil {
		inst.latest = b.Checkpoint
	}
	return wait, nil
}
