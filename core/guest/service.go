package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
)

// Emitters is what the Service needs of the emitter manager
// (core/emitter.Manager implements it).
type Emitters interface {
	Attach(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
	Stop(ctx context.Context, id string) error
	Get(ctx context.Context, id string) (emitter.Spec, error)
	List(ctx context.Context, f emitter.Filter, after string, limit int) ([]emitter.Spec, string)
}

// NamedSource is a configured source. Key identifies its configuration:
// a reload restarts a source only when its key changed.
type NamedSource struct {
	Name   string
	Key    string
	Source Source
}

// Attachment states.
const (
	AttachRunning = "running"
	AttachStopped = "stopped"
	AttachFailed  = "failed"
)

// Attachment is one emitter a rule attached to a guest.
type Attachment struct {
	ID    string
	Kind  string
	Rule  string
	State string
	Error string
	req   emitter.CreateRequest
}

// View is a guest as the API lists it.
type View struct {
	Guest
	State    string
	Emitters []Attachment
}

// Options tune a Service.
type Options struct {
	// Events receives the lifecycle events (nil: none are kept).
	Events *stream.Stream
	// RetryEvery retries failed attachments (default 10s).
	RetryEvery time.Duration
	// SyncWait bounds how long the Service waits for every source's first
	// report before it stops the guest emitters no guest claims (a
	// restart with guests gone meanwhile). Default 10s.
	SyncWait time.Duration
	// MaxGone bounds the gone guests still listed (default 1000).
	MaxGone int
	Log     *slog.Logger
}

// Service keeps each guest's emitters in step with the guests and rules.
// One goroutine owns the state; sources and Apply talk to it by channel.
type Service struct {
	em   Emitters
	opts Options
	log  *slog.Logger

	updates chan update
	applies chan applyReq
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	srcWG   sync.WaitGroup

	mu   sync.RWMutex
	view []View
}

type update struct {
	source string
	gen    int
	guests []Guest
}

type applyReq struct {
	sources []NamedSource
	rules   []Rule
	done    chan struct{}
}

// New starts a Service with no sources and no rules; Apply gives it them.
func New(em Emitters, opts Options) *Service {
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 10 * time.Second
	}
	if opts.SyncWait <= 0 {
		opts.SyncWait = 10 * time.Second
	}
	if opts.MaxGone <= 0 {
		opts.MaxGone = 1000
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{em: em, opts: opts, log: opts.Log, updates: make(chan update), applies: make(chan applyReq),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go s.loop(newState(s))
	return s
}

// Apply replaces the sources and rules and waits until the change is
// taken (not until every emitter is attached). Sources whose key did not
// change keep running; the guests of a removed source are gone.
func (s *Service) Apply(ctx context.Context, sources []NamedSource, rules []Rule) error {
	req := applyReq{sources: sources, rules: rules, done: make(chan struct{})}
	select {
	case s.applies <- req:
	case <-s.done:
		return errors.New("guests: service closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Guests lists every guest known, present or gone, by source and name.
func (s *Service) Guests() []View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.view
}

// Close stops the sources and the Service; the attached emitters keep
// running (the emitter manager closes them).
func (s *Service) Close(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("guests: close: %w", ctx.Err())
	}
	s.srcWG.Wait()
	return nil
}

func (s *Service) loop(st *state) {
	defer close(s.done)
	retry := time.NewTicker(s.opts.RetryEvery)
	defer retry.Stop()
	syncTimer := time.NewTimer(s.opts.SyncWait)
	defer syncTimer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			st.stopSources()
			return
		case u := <-s.updates:
			st.report(u)
		case a := <-s.applies:
			st.apply(a)
			close(a.done)
		case <-retry.C:
			st.retryFailed()
		case <-syncTimer.C:
			st.synced = true
		}
		st.cleanupOnce()
		st.flush()
		s.publishView(st)
	}
}

func (s *Service) publishView(st *state) {
	if !st.dirty {
		return
	}
	st.dirty = false
	v := st.views()
	s.mu.Lock()
	s.view = v
	s.mu.Unlock()
}

// runSource runs one source until its context ends.
func (s *Service) runSource(ctx context.Context, ns NamedSource, gen int) {
	defer s.srcWG.Done()
	err := ns.Source.Run(ctx, func(gs []Guest) {
		cp := make([]Guest, len(gs))
		for i, g := range gs {
			g.Source = ns.Name
			g.Labels = maps.Clone(g.Labels)
			cp[i] = g
		}
		select {
		case s.updates <- update{source: ns.Name, gen: gen, guests: cp}:
		case <-ctx.Done():
		}
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("guest source failed", "source", ns.Name, "err", err)
	}
}
