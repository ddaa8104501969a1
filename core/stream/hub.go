package stream

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// HubOptions tune a Hub.
type HubOptions struct {
	// PruneInterval is how often history bounds are enforced (default 30s).
	PruneInterval time.Duration
	// OnPublish, if set, is told how many events became visible on a
	// stream of kind (telemetry). It runs on the publishing path: be quick.
	OnPublish func(kind string, events int)
	// ExternalIdle is how long an external stream (OpenExternal) may have
	// no subscriber before the hub drops it and releases its source
	// (default 1 min). Handing it out (Get, OpenExternal) counts as use.
	ExternalIdle time.Duration
	// WakeLinger is the least time between two wake-ups of a stream's
	// waiting subscribers (0: one per publish). A publish after a quiet
	// spell wakes them at once; later ones within the linger wake them
	// together at its end, so a hot stream of single-event publishes
	// costs each subscriber one write per linger, not one per event.
	// Subscribers still busy writing see new events without a wake-up.
	WakeLinger time.Duration
	// CommitsInFlight is how many commits of one stream may be in the
	// store at once when the store is a Submitter (default 2; 1: one at
	// a time). A caller then waits for about one commit instead of the
	// rest of the running one plus its own.
	CommitsInFlight int
}

// Hub holds the open streams by name and prunes their history.
type Hub struct {
	store Store
	log   *slog.Logger
	opts  HubOptions

	mu      sync.RWMutex
	streams map[string]*Stream
	closed  bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewHub returns a hub over store and starts its background pruner.
func NewHub(store Store, log *slog.Logger, opts HubOptions) *Hub {
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = 30 * time.Second
	}
	if opts.ExternalIdle <= 0 {
		opts.ExternalIdle = time.Minute
	}
	if opts.CommitsInFlight <= 0 {
		opts.CommitsInFlight = defaultCommitsInFlight
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{store: store, log: log, opts: opts, streams: map[string]*Stream{}, cancel: cancel}
	h.wg.Add(2)
	go h.pruneLoop(ctx, opts.PruneInterval)
	go h.idleLoop(ctx)
	return h
}

// Open returns the stream name, creating it with cfg (and its head from the
// store, so seqs continue after a restart) if it is not open yet.
func (h *Hub) Open(ctx context.Context, name string, cfg Config) (*Stream, error) {
	if s, ok := h.Get(name); ok {
		return s, nil
	}
	head, err := h.store.Head(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("open stream %s: %w", name, ErrClosed)
	}
	if s, ok := h.streams[name]; ok {
		return s, nil
	}
	s := newStream(name, cfg, h.store, head, h.opts.CommitsInFlight)
	s.onPublish, s.wakeLinger = h.opts.OnPublish, h.opts.WakeLinger
	h.streams[name] = s
	return s, nil
}

// Get returns an open stream.
func (h *Hub) Get(name string) (*Stream, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s, ok := h.streams[name]
	if ok && s.ext != nil {
		// Its caller is about to subscribe: not idle.
		s.lastUsed.Store(time.Now().UnixNano())
	}
	return s, ok
}

// Names returns the open streams' names, sorted.
func (h *Hub) Names() []string {
	h.mu.RLock()
	names := make([]string, 0, len(h.streams))
	for n := range h.streams {
		names = append(names, n)
	}
	h.mu.RUnlock()
	sort.Strings(names)
	return names
}

// Remove closes a stream (its subscribers get ErrClosed after draining)
// and, with purge, deletes its history and head. An external stream's
// source is released instead: its history is not the hub's to delete.
func (h *Hub) Remove(ctx context.Context, name string, purge bool) error {
	h.mu.Lock()
	s, ok := h.streams[name]
	delete(h.streams, name)
	h.mu.Unlock()
	if ok && s.ext != nil {
		s.close()
		s.release()
		return nil
	}
	if ok {
		s.close()
		// A commit still in flight would write history back after the purge.
		if err := s.waitFlushed(ctx); err != nil {
			return fmt.Errorf("remove stream %s: %w", name, err)
		}
	}
	if purge {
		if err := h.store.DeleteStream(ctx, name); err != nil {
			return fmt.Errorf("remove stream %s: %w", name, err)
		}
	}
	return nil
}

// Close stops the pruner and closes every stream.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	streams := h.streams
	h.streams = map[string]*Stream{}
	h.mu.Unlock()
	for _, s := range streams {
		s.close()
		s.release()
	}
	h.cancel()
	// Commits already queued still land, so the store can close after us.
	for _, s := range streams {
		if err := s.waitFlushed(ctx); err != nil {
			return fmt.Errorf("close hub: %w", err)
		}
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close hub: %w", ctx.Err())
	}
}

func (h *Hub) pruneLoop(ctx context.Context, every time.Duration) {
	defer h.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.PruneOnce(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("prune history", "err", err)
			}
		}
	}
}

// PruneOnce enforces every persisted stream's bounds now.
func (h *Hub) PruneOnce(ctx context.Context) error {
	h.mu.RLock()
	var todo []*Stream
	for _, s := range h.streams {
		if s.ext == nil && s.cfg.Persist && (s.cfg.MaxEvents > 0 || s.cfg.MaxAge > 0) {
			todo = append(todo, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range todo {
		var olderThan time.Time
		if s.cfg.MaxAge > 0 {
			olderThan = time.Now().Add(-s.cfg.MaxAge)
		}
		if _, err := h.store.Prune(ctx, s.name, s.cfg.MaxEvents, olderThan); err != nil {
			return fmt.Errorf("prune %s: %w", s.name, err)
		}
	}
	return nil
}
