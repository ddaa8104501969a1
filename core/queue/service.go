package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Options tune a Service.
type Options struct {
	Limits Limits
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// SweepInterval is how often expired messages and claims are purged
	// from storage (default 1s). Reads never see them either way.
	SweepInterval time.Duration
}

// Service is the queue API every transport uses: it validates requests,
// applies queue metadata, wakes watchers on posts and purges what expired.
type Service struct {
	d    Driver
	l    Limits
	now  func() time.Time
	log  *slog.Logger
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	confs   map[Key]queueConf
	gen     uint64
	watches map[Key]chan struct{}
}

// NewService serves d and starts the expiry sweeper; Close stops it.
func NewService(d Driver, o Options, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Second
	}
	s := &Service{
		d: d, l: o.Limits.withDefaults(), now: o.Now, log: log,
		quit: make(chan struct{}), done: make(chan struct{}),
		confs: map[Key]queueConf{}, watches: map[Key]chan struct{}{},
	}
	go s.sweep(o.SweepInterval)
	return s
}

// Limits returns the effective limits.
func (s *Service) Limits() Limits { return s.l }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Close stops the sweeper (waiting for a sweep in progress, or ctx).
func (s *Service) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.quit) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue: close: %w", ctx.Err())
	}
}

func (s *Service) sweep(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		n, err := s.d.Expire(ctx, s.now())
		switch {
		case err != nil && ctx.Err() == nil:
			// Nobody to return this to; the next tick retries.
			s.log.Warn("queue expiry sweep failed", "err", err)
		case n > 0:
			s.log.Debug("queue expiry sweep", "removed", n)
		}
	}
}

func (s *Service) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// CreateQueue creates k (Zaqar PUT); created is false when it existed.
func (s *Service) CreateQueue(ctx context.Context, k Key, meta json.RawMessage) (bool, error) {
	if err := CheckKey(k); err != nil {
		return false, err
	}
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	if _, err := s.l.checkMetadata(meta); err != nil {
		return false, err
	}
	created, err := s.d.CreateQueue(ctx, k, meta, s.now())
	s.forget(k)
	return created, err
}

// Metadata returns k's metadata.
func (s *Service) Metadata(ctx context.Context, k Key) (json.RawMessage, error) {
	if err := CheckKey(k); err != nil {
		return nil, err
	}
	return s.d.QueueMetadata(ctx, k)
}

// SetMetadata replaces k's metadata.
func (s *Service) SetMetadata(ctx context.Context, k Key, meta json.RawMessage) error {
	if err := CheckKey(k); err != nil {
		return err
	}
	if _, err := s.l.checkMetadata(meta); err != nil {
		return err
	}
	err := s.d.SetQueueMetadata(ctx, k, meta)
	s.forget(k)
	return err
}

// ListQueues pages through tenant's queues by name.
func (s *Service) ListQueues(ctx context.Context, tenant, marker string, limit int) ([]QueueInfo, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	if err := checkCount("limit", limit, s.l.MaxQueuesPerPage); err != nil {
		return nil, err
	}
	return s.d.ListQueues(ctx, tenant, marker, limit)
}

// DeleteQueue deletes k and its messages and claims.
func (s *Service) DeleteQueue(ctx context.Context, k Key) error {
	if err := CheckKey(k); err != nil {
		return err
	}
	err := s.d.DeleteQueue(ctx, k)
	s.forget(k)
	return err
}

// Stats counts k's messages.
func (s *Service) Stats(ctx context.Context, k Key) (Stats, error) {
	if err := CheckKey(k); err != nil {
		return Stats{}, err
	}
	return s.d.QueueStats(ctx, k, s.now())
}

// conf returns k's post settings, cached until its metadata changes.
func (s *Service) conf(ctx context.Context, k Key) (queueConf, error) {
	s.mu.Lock()
	c, ok := s.confs[k]
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	meta, err := s.d.QueueMetadata(ctx, k)
	switch {
	case errors.Is(err, ErrQueueNotFound):
		c = queueConf{defaultTTL: s.l.DefaultMessageTTL, maxPost: s.l.MaxPostBytes}
	case err != nil:
		return c, err
	default:
		// Stored metadata passed checkMetadata once; limits may have
		// shrunk since, so fall back to defaults rather than fail posts.
		if c, err = s.l.checkMetadata(meta); err != nil {
			c = queueConf{defaultTTL: s.l.DefaultMessageTTL, maxPost: s.l.MaxPostBytes}
		}
	}
	s.mu.Lock()
	if s.gen == gen {
		// k's strings may share a whole request's bytes (the WebSocket
		// API reads names in place): the cache, which outlives it, keeps
		// copies.
		s.confs[Key{Tenant: strings.Clone(k.Tenant), Queue: strings.Clone(k.Queue)}] = c
	}
	s.mu.Unlock()
	return c, nil
}

func (s *Service) forget(k Key) {
	s.mu.Lock()
	delete(s.confs, k)
	s.gen++
	s.mu.Unlock()
}
