package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// Position is where a subscription starts.
type Position struct {
	after uint64
	now   bool
}

// FromNow starts after the current head: only new events.
func FromNow() Position { return Position{now: true} }

// After starts after seq (After(0): from the first event still kept).
func After(seq uint64) Position { return Position{after: seq} }

// Subscription reads a stream from a cursor. It is not safe for concurrent
// use: each subscriber's writer goroutine owns one.
type Subscription struct {
	s      *Stream
	cursor uint64
	closed bool
	// offSeen is the stream's offEpoch this subscriber was told about.
	offSeen uint64
	// widx is this subscription's index in the stream's wakers, -1 when
	// Poll has not registered wake (both guarded by the stream's wmu).
	widx int
	wake func()
}

// Subscribe opens a subscription at pos. A resume point beyond the head
// (a seq this stream never handed out) starts at the head.
func (s *Stream) Subscribe(pos Position) *Subscription {
	s.rmu.RLock()
	head := s.head
	// An external stream whose source is lost may not know its head yet
	// (a mirror opened while its owner was down): a resume point beyond
	// it is kept, not replayed from the head once the source is back.
	trustResume := s.ext != nil && s.offline
	// Counted under rmu: the hub drops an idle external stream only when
	// it sees no subscriber under the write lock.
	s.subscribers.Add(1)
	s.rmu.RUnlock()
	cursor := pos.after
	if pos.now || (cursor > head && !trustResume) {
		cursor = head
	}
	return &Subscription{s: s, cursor: cursor, widx: -1}
}

// Cursor returns the last seq delivered (or skipped by a gap).
func (sub *Subscription) Cursor() uint64 { return sub.cursor }

// Close releases the subscription.
func (sub *Subscription) Close() {
	if !sub.closed {
		sub.closed = true
		sub.Unpoll()
		if sub.s.subscribers.Add(-1) == 0 && sub.s.ext != nil {
			sub.s.lastUsed.Store(time.Now().UnixNano())
		}
	}
}

// Next blocks until at least one event after the cursor is visible, then
// appends to dst everything available (at most MaxBatch) and advances. The
// result may start with a gap marker when the events after the cursor are
// no longer kept, or a reset marker when the stream started over without
// them, or be one offline marker when an external stream's
// source was lost. It returns ErrClosed once the stream ended and every
// visible event was delivered.
func (sub *Subscription) Next(ctx context.Context, dst []*event.Event) ([]*event.Event, error) {
	return sub.NextUntil(ctx, dst, nil)
}

// ErrIdle is returned by NextUntil when its timer fired before any event.
var ErrIdle = errors.New("no event before the timer fired")

// NextUntil is Next that also stops waiting, with ErrIdle, when timer
// fires (a nil timer never fires). A writer that keeps one timer for its
// heartbeat needs no context and timer per call, which costs more than
// the delivery itself at high fan-out.
func (sub *Subscription) NextUntil(ctx context.Context, dst []*event.Event, timer <-chan time.Time) ([]*event.Event, error) {
	s := sub.s
	for {
		s.rmu.RLock()
		head, closed, notify, offline := s.head, s.closed, s.notify, s.offline
		if offline && sub.offSeen != s.offEpoch {
			sub.offSeen = s.offEpoch
			e := event.Offline(s.name, sub.cursor, s.offReason)
			s.rmu.RUnlock()
			return append(dst, e), nil
		}
		if sub.cursor < head && s.wakeDue && head-sub.cursor < lingerBatch && !closed {
			// A linger is gathering more events of a hot stream: take
			// them all when it ends, in one write, rather than a few
			// now and a few more a moment later.
			s.rmu.RUnlock()
		} else if sub.cursor < head {
			oldest := s.ringOldest()
			if sub.cursor+1 >= oldest {
				n := len(dst)
				dst = sub.fromRing(dst, head)
				s.rmu.RUnlock()
				if len(dst) > n {
					return dst, nil
				}
				continue // only seqs whose commit failed: wait for more
			}
			s.rmu.RUnlock()
			if !offline {
				return sub.catchUp(ctx, dst, oldest)
			}
			// The history is at the lost source: wait until it is back.
		} else {
			s.rmu.RUnlock()
		}
		if closed {
			return dst, fmt.Errorf("subscription to %s: %w", s.name, ErrClosed)
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-timer:
			return dst, ErrIdle
		}
	}
}

// lingerBatch is how many events a subscriber takes at once without
// waiting for a linger to end: one that lags by more is sent what there is.
const lingerBatch = 64

// fromRing appends the ring's events after the cursor, up to head and
// MaxBatch, and advances the cursor (rmu held).
func (sub *Subscription) fromRing(dst []*event.Event, head uint64) []*event.Event {
	end := min(head, sub.cursor+MaxBatch)
	for seq := sub.cursor + 1; seq <= end; seq++ {
		if e := sub.s.at(seq); e != nil {
			dst = append(dst, e)
		}
	}
	sub.cursor = end
	return dst
}

// catchUp serves a cursor that fell out of the ring: from history when the
// stream keeps it, else with a gap up to the ring, or a reset when the
// cursor is from before the stream started over.
func (sub *Subscription) catchUp(ctx context.Context, dst []*event.Event, ringOldest uint64) ([]*event.Event, error) {
	s := sub.s
	if !s.cfg.Persist && s.ext == nil && sub.cursor+1 < s.ringStart {
		// A stream without history starts each process at the head it
		// leased, beyond every seq the last one handed out; the seqs in
		// between never existed, so a gap over them would be a lie. (A
		// ring that no longer reaches ringStart is a gap after this.)
		dst = append(dst, event.Reset(s.name, s.ringStart))
		sub.cursor = s.ringStart - 1
		return dst, nil
	}
	if s.cfg.Persist {
		evs, err := s.hist.ReadAfter(ctx, s.name, sub.cursor, MaxBatch)
		if err != nil {
			return dst, fmt.Errorf("read history of %s: %w", s.name, err)
		}
		if len(evs) > 0 && evs[0].Seq < ringOldest {
			if first := evs[0].Seq; first > sub.cursor+1 {
				dst = append(dst, event.Gap(s.name, sub.cursor+1, first-1))
			}
			// Only what the ring does not hold: the ring takes over after.
			for _, e := range evs {
				if e.Seq >= ringOldest {
					break
				}
				dst = append(dst, e)
				sub.cursor = e.Seq
			}
			return dst, nil
		}
	}
	dst = append(dst, event.Gap(s.name, sub.cursor+1, ringOldest-1))
	sub.cursor = ringOldest - 1
	return dst, nil
}
