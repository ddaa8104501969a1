// Package stream holds the ordered events of each stream: it assigns seqs,
// keeps a ring of recent events, commits to a Store before events become
// visible, and lets any number of subscribers read from any seq.
//
// Subscriptions are pull-based: a subscriber owns only a cursor, so one that
// falls behind never slows the emitter or other subscribers and its memory
// stays bounded. When it falls out of the ring it continues from history or,
// where history no longer reaches, receives a gap marker.
package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// Errors of the package.
var (
	// ErrClosed is returned once a stream was removed or its hub closed.
	ErrClosed = errors.New("stream closed")
	// ErrNotFound is returned for a stream the hub does not hold.
	ErrNotFound = errors.New("stream not found")
	// ErrStoreUnavailable is wrapped by a store that cannot serve for a
	// while (e.g. its disk is full) but may recover: retry later.
	ErrStoreUnavailable = errors.New("store temporarily unavailable")
)

const (
	defaultRingSize = 4096
	// MaxBatch bounds the events one Next returns (one coalesced write).
	MaxBatch = 1024
	// leaseSize is how far ahead a stream without history reserves seqs,
	// so it writes its head once per leaseSize events, not per event.
	leaseSize = 1 << 16
)

// Config is how a stream keeps its events.
type Config struct {
	// Persist stores every event in the history before it is visible.
	Persist bool
	// RingSize is the number of recent events kept in memory (rounded up
	// to a power of two; default 4096).
	RingSize  int
	MaxEvents int
	MaxAge    time.Duration
	// Kind labels the stream in metrics: the emitter kind, "tracker", …
	Kind string
}

// Stream is the ordered events of one emitter, tracker user or queue.
type Stream struct {
	name  string
	cfg   Config
	store Store
	// hist serves reads older than the ring: the store, or ext.
	hist History
	// ext is set on an external stream (seqs assigned elsewhere).
	ext      ExternalSource
	released sync.Once
	// lastUsed is when an external stream was last handed out or lost
	// its last subscriber (unix nanos): the hub drops it when idle.
	lastUsed atomic.Int64

	// mu orders writers: seq assignment and the commit queue.
	mu    sync.Mutex
	last  uint64 // last seq handed out
	lease uint64 // head durably reserved in the store (no-history streams)
	queue []*pending
	// failed is the error of the last failed commit until Recover takes
	// it: an append that carries a checkpoint is refused meanwhile, since
	// its emitter computed it from state that was never stored.
	failed error
	// durableCP is the checkpoint of the newest successful commit that
	// carried one (nil: none since the stream was opened).
	durableCP *Checkpoint
	// flushDone is non-nil while appends are queued or commits are in
	// flight, and is closed once both are none again.
	flushDone chan struct{}
	// flights are the commits submitted to the store and not yet
	// settled, oldest first (flush.go); submitting is set while one
	// goroutine submits the next, so the store takes them in order.
	flights    []*flight
	submitting bool
	// broken is the failure of a flight whose followers are still in
	// the store: nothing new is submitted until they settled (they fail).
	broken error
	// depth is how many commits may be in flight (1 without a Submitter).
	depth     int
	submitter Submitter

	// rmu guards what readers see.
	rmu       sync.RWMutex
	ring      []*event.Event
	mask      uint64
	head      uint64 // last visible seq
	ringStart uint64 // first seq published into the ring by this process
	notify    chan struct{}
	closed    bool
	// offline is set while an external stream's source is lost;
	// offEpoch counts the times it was lost, so each subscriber gets one
	// offline marker per loss.
	offline   bool
	offEpoch  uint64
	offReason string

	// wakeLinger spaces the wake-ups of publishes (HubOptions.WakeLinger);
	// lastWake, wakeTimer and wakeDue are guarded by rmu.
	wakeLinger time.Duration
	lastWake   time.Time
	wakeTimer  *time.Timer
	wakeDue    bool

	// wakers are the subscriptions that Poll found with nothing to
	// deliver, called at the next wake-up (wmu; taken under rmu).
	wmu      sync.Mutex
	wakers   []*Subscription
	spareFns []func() // the last wake-up's calls, reused (rmu)

	onPublish   func(kind string, events int)
	subscribers atomic.Int64
	published   atomic.Uint64
}

type pending struct {
	events []*event.Event
	append Append
	done   chan error
}

func newStream(name string, cfg Config, store Store, head uint64, inFlight int) *Stream {
	size := uint64(defaultRingSize)
	if cfg.RingSize > 0 {
		size = 1
		for size < uint64(cfg.RingSize) {
			size <<= 1
		}
	}
	st := &Stream{
		name: name, cfg: cfg, store: store, hist: store,
		last: head, lease: head,
		ring: make([]*event.Event, size), mask: size - 1,
		head: head, ringStart: head + 1,
		notify: make(chan struct{}),
		depth:  1,
	}
	if sub, ok := store.(Submitter); ok && inFlight > 1 {
		st.submitter, st.depth = sub, inFlight
	}
	return st
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// Kind returns the stream's metrics label (Config.Kind).
func (s *Stream) Kind() string { return s.cfg.Kind }

// Config returns how the stream keeps its events.
func (s *Stream) Config() Config { return s.cfg }

// Head returns the last visible seq.
func (s *Stream) Head() uint64 {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	return s.head
}

// Subscribers returns the number of open subscriptions.
func (s *Stream) Subscribers() int { return int(s.subscribers.Load()) }

// Published returns how many events this process made visible.
func (s *Stream) Published() uint64 { return s.published.Load() }

// Publish assigns seqs to drafts, commits them (with cp, in the same
// transaction) when the stream persists history or cp is set, and makes
// them visible to subscribers in seq order. It returns the last seq (the
// current head when drafts is empty) once everything is durable.
func (s *Stream) Publish(ctx context.Context, drafts []event.Draft, cp *Checkpoint) (uint64, error) {
	last, wait, err := s.Enqueue(drafts, cp)
	if err != nil {
		return 0, err
	}
	return last, wait(ctx)
}

// Enqueue assigns seqs and queues the commit, in call order, without
// waiting for it; wait must be called and returns once it is durable and
// visible. A caller that must order Enqueue with its own state (a command
// and its checkpoint) holds its lock across Enqueue only, not the wait.
func (s *Stream) Enqueue(drafts []event.Draft, cp *Checkpoint) (last uint64, wait func(context.Context) error, err error) {
	if s.ext != nil {
		return 0, nil, fmt.Errorf("publish to %s: %w", s.name, ErrExternal)
	}
	s.mu.Lock()
	if s.isClosed() {
		s.mu.Unlock()
		return 0, nil, fmt.Errorf("publish to %s: %w", s.name, ErrClosed)
	}
	if s.failed != nil && cp != nil {
		err := s.failed
		s.mu.Unlock()
		return 0, nil, fmt.Errorf("publish to %s: a commit failed and its emitter was not rolled back yet: %w", s.name, err)
	}
	events := s.assign(drafts)
	last = s.last
	a := Append{Stream: s.name, Checkpoint: cp}
	if s.cfg.Persist {
		if len(events) > 0 {
			a.Events, a.Head = events, last
		}
	} else if last > s.lease {
		// s.lease moves only once this commit succeeded, so a failed
		// reservation is retried by the next publish instead of letting
		// seqs beyond the durable head become visible (reused after a
		// restart).
		a.Head = last + leaseSize
	}
	needsCommit := len(a.Events) > 0 || a.Head != 0 || cp != nil
	if !needsCommit && s.flushDone == nil {
		// Nothing to store and nothing queued ahead: visible at once.
		s.makeVisible(events)
		s.mu.Unlock()
		return last, func(context.Context) error { return nil }, nil
	}
	p := &pending{events: events, append: a, done: make(chan error, 1)}
	s.queue = append(s.queue, p)
	if s.flushDone == nil {
		s.flushDone = make(chan struct{})
	}
	leader := s.claimSubmitLocked()
	s.mu.Unlock()

	return last, func(ctx context.Context) error {
		if leader {
			// The leader commits whatever its own ctx says: others wait on
			// it. Its own append is in the batch it submits, so it returns
			// after that batch; later batches are submitted by whoever
			// queues or settles next: a leader is never held hostage by
			// later publishers.
			s.commitNext(context.WithoutCancel(ctx), false)
			return <-p.done
		}
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (s *Stream) assign(drafts []event.Draft) []*event.Event {
	events := make([]*event.Event, len(drafts))
	now := time.Now().UTC()
	for i, d := range drafts {
		s.last++
		t := d.Time
		if t.IsZero() {
			t = now
		}
		events[i] = &event.Event{Stream: s.name, Seq: s.last, Type: d.Type, Time: t.UTC(), Data: d.Data}
	}
	return events
}

func (s *Stream) makeVisible(events []*event.Event) {
	s.rmu.Lock()
	s.makeVisibleLocked(events)
	s.rmu.Unlock()
}

func (s *Stream) makeVisibleLocked(events []*event.Event) {
	if len(events) == 0 || s.closed {
		return
	}
	for _, e := range events {
		s.ring[e.Seq&s.mask] = e
	}
	s.advanceLocked(events[len(events)-1].Seq, len(events))
}

// advanceLocked moves the head to seq once n events up to it are in the
// ring, and wakes the subscribers (rmu held).
func (s *Stream) advanceLocked(seq uint64, n int) {
	s.head = seq
	s.published.Add(uint64(n))
	if s.onPublish != nil && n > 0 {
		s.onPublish(s.cfg.Kind, n)
	}
	s.wakeSoonLocked()
}

// wakeSoonLocked wakes the subscribers now, or at the end of the linger
// when the last wake-up was less than a linger ago (rmu held).
func (s *Stream) wakeSoonLocked() {
	if s.wakeLinger <= 0 {
		s.wakeLocked()
		return
	}
	if s.wakeDue {
		return // the timer wakes them, with this event too
	}
	now := time.Now()
	if wait := s.wakeLinger - now.Sub(s.lastWake); wait > 0 {
		s.wakeDue = true
		if s.wakeTimer == nil {
			s.wakeTimer = time.AfterFunc(wait, s.lingerEnded)
		} else {
			s.wakeTimer.Reset(wait)
		}
		return
	}
	s.lastWake = now
	s.wakeLocked()
}

// lingerEnded wakes the subscribers for the events published during the
// linger.
func (s *Stream) lingerEnded() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if !s.wakeDue || s.closed {
		return
	}
	s.wakeDue = false
	s.lastWake = time.Now()
	s.wakeLocked()
}

// wakeLocked tells every waiting subscriber to look again (rmu held).
func (s *Stream) wakeLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
	s.callWakersLocked()
}

// at returns the visible event seq from the ring, or nil for a seq whose
// commit failed (rmu held, seq within the ring's bounds).
func (s *Stream) at(seq uint64) *event.Event {
	if e := s.ring[seq&s.mask]; e != nil && e.Seq == seq {
		return e
	}
	return nil
}

// ringOldest is the oldest seq the ring still holds (rmu held).
func (s *Stream) ringOldest() uint64 {
	oldest := s.ringStart
	if size := s.mask + 1; s.head >= size && s.head-size+1 > oldest {
		oldest = s.head - size + 1
	}
	return oldest
}

func (s *Stream) isClosed() bool {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	return s.closed
}

// close ends the stream: subscribers drain what is visible, then get
// ErrClosed.
func (s *Stream) close() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.notify)
		s.callWakersLocked()
		if s.wakeTimer != nil {
			s.wakeTimer.Stop()
		}
	}
}
