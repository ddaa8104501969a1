package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// ErrExternal is returned by Publish/Enqueue on a stream whose seqs are
// assigned elsewhere.
var ErrExternal = errors.New("stream is fed from elsewhere")

// ExternalSource is where an external stream's history and head come from
// (another node, JetStream).
type ExternalSource interface {
	// History reads the stream remotely: catch-up and pages older than
	// the ring, and the head at open.
	History
	// Release is called once when the hub drops the stream (idle, Remove
	// or Close), or at once when OpenExternal does not keep the source:
	// the source unsubscribes.
	Release()
}

// OpenExternal returns the stream name, creating it as an external stream
// if it is not open: its head is src.Head at open, it takes no Publish
// (ErrExternal), its events come from Deliver, and reads older than the
// ring (pages, subscribers' catch-up) go to src when cfg.Persist. An open
// local stream of that name is an error.
//
// OpenExternal owns src from the call on: src.Release is called exactly
// once, when the stream is dropped or, if src is not kept (the stream was
// already open, or an error), before OpenExternal returns. So two callers
// racing to open one stream leak nothing.
func (h *Hub) OpenExternal(ctx context.Context, name string, cfg Config, src ExternalSource) (*Stream, error) {
	if s, ok := h.Get(name); ok {
		src.Release()
		return externalOrErr(s)
	}
	head, err := src.Head(ctx, name)
	if err != nil {
		src.Release()
		return nil, fmt.Errorf("open external stream %s: %w", name, err)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		src.Release()
		return nil, fmt.Errorf("open external stream %s: %w", name, ErrClosed)
	}
	if s, ok := h.streams[name]; ok {
		h.mu.Unlock()
		src.Release()
		return externalOrErr(s)
	}
	s := newStream(name, cfg, nil, head, 1)
	s.hist, s.ext = src, src
	s.onPublish, s.wakeLinger = h.opts.OnPublish, h.opts.WakeLinger
	s.lastUsed.Store(time.Now().UnixNano())
	h.streams[name] = s
	h.mu.Unlock()
	return s, nil
}

func externalOrErr(s *Stream) (*Stream, error) {
	if s.ext == nil {
		return nil, fmt.Errorf("open external stream %s: a local stream of that name is open", s.name)
	}
	return s, nil
}

// External reports whether the stream is fed by Deliver (OpenExternal).
func (s *Stream) External() bool { return s.ext != nil }

// Deliver makes events (ascending, of this stream) visible in order. Seqs
// <= head are dropped (seen). When the next new seq is > head+1 (a hole),
// nothing from the hole on is applied and the missing range [from, to] is
// returned (ok=false), so the caller fills it from the source and
// delivers again. Events delivered to a closed stream are dropped.
func (s *Stream) Deliver(events []*event.Event) (from, to uint64, ok bool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed {
		return 0, 0, true
	}
	next, n := s.head+1, 0
	ok = true
	for _, e := range events {
		if e.Seq < next {
			continue
		}
		if e.Seq > next {
			from, to, ok = next, e.Seq-1, false
			break
		}
		s.ring[e.Seq&s.mask] = e
		next++
		n++
	}
	if n > 0 {
		s.advanceLocked(next-1, n)
	}
	return from, to, ok
}

// Skip moves an external stream's head to seq (if higher) without events
// and without telling subscribers: the source never used the seqs after
// the head up to seq (its sequence went on higher, e.g. a tracker user's
// after its history aged out). For seqs that existed and are gone, use
// DeliverGap. A skip is not a hole: nothing to fill.
func (s *Stream) Skip(seq uint64) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed || seq <= s.head {
		return
	}
	s.ring[seq&s.mask] = nil
	s.advanceLocked(seq, 0)
}

// SetOffline marks the source lost (true) or back (false). Each
// subscriber, current or new while offline, receives one control event
// event.Offline(stream, cursor, reason) and keeps waiting; once back
// online delivery simply resumes (nothing repeated, nothing lost). While
// offline, subscribers that need the source's history wait for it.
func (s *Stream) SetOffline(offline bool, reason string) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed || s.offline == offline {
		return
	}
	s.offline = offline
	if offline {
		s.offEpoch++
		s.offReason = reason
	}
	s.wakeLocked()
}

// Offline reports whether the stream's source is marked lost.
func (s *Stream) Offline() bool {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	return s.offline
}

// release tells an external stream's source it is no longer used.
func (s *Stream) release() {
	if s.ext != nil {
		s.released.Do(s.ext.Release)
	}
}

// closeIfIdle closes an external stream that has had no subscriber since
// idle before now; it reports whether it did.
func (s *Stream) closeIfIdle(now time.Time, idle time.Duration) bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed || s.subscribers.Load() > 0 || now.UnixNano()-s.lastUsed.Load() < int64(idle) {
		return false
	}
	s.closed = true
	close(s.notify)
	s.callWakersLocked()
	return true
}

// dropIdle removes the external streams idle for ExternalIdle and
// releases their sources.
func (h *Hub) dropIdle(now time.Time) {
	var dropped []*Stream
	h.mu.Lock()
	for name, s := range h.streams {
		if s.ext != nil && s.closeIfIdle(now, h.opts.ExternalIdle) {
			delete(h.streams, name)
			dropped = append(dropped, s)
		}
	}
	h.mu.Unlock()
	for _, s := range dropped {
		s.release()
	}
}

func (h *Hub) idleLoop(ctx context.Context) {
	defer h.wg.Done()
	t := time.NewTicker(max(h.opts.ExternalIdle/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.dropIdle(now)
		}
	}
}
