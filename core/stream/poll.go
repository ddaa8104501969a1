package stream

import (
	"github.com/sidestream/sidestream/core/event"
)

// PollResult is what Poll did.
type PollResult int

const (
	// PollEvents: Poll appended events (at least one).
	PollEvents PollResult = iota
	// PollWait: nothing to deliver yet; wake will be called once, at the
	// stream's next wake-up (or when it closes).
	PollWait
	// PollBlocking: what comes next needs a wait Poll does not do (a read
	// of the history, a source that is offline, the end of the stream):
	// the caller uses NextUntil for it. wake is not registered.
	PollBlocking
)

// Poll is NextUntil without the wait, for a writer that serves many
// subscriptions on one goroutine: a wake-up of a hot stream then makes a
// few such writers runnable, not one goroutine per subscriber. It
// appends what the ring holds after the cursor, as NextUntil would, or
// registers wake to be called once at the stream's next wake-up. wake is
// called with the stream's lock held: it must only hand the subscription
// to its writer, never call back into the stream. A subscription keeps
// one registration at a time (the same wake each time); Unpoll drops it.
func (sub *Subscription) Poll(dst []*event.Event, wake func()) ([]*event.Event, PollResult) {
	s := sub.s
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	head := s.head
	switch {
	case s.offline || s.closed:
		return dst, PollBlocking
	case sub.cursor < head && s.wakeDue && head-sub.cursor < lingerBatch:
		// A linger gathers more (see NextUntil): its end wakes us.
	case sub.cursor < head:
		if sub.cursor+1 < s.ringOldest() {
			return dst, PollBlocking
		}
		n := len(dst)
		if dst = sub.fromRing(dst, head); len(dst) > n {
			return dst, PollEvents
		}
		// Only seqs whose commit failed: wait for more.
	}
	// Under the read lock, so the next wake-up (under the write lock)
	// comes after and sees it.
	s.wmu.Lock()
	if sub.widx < 0 {
		sub.wake = wake
		sub.widx = len(s.wakers)
		s.wakers = append(s.wakers, sub)
	}
	s.wmu.Unlock()
	return dst, PollWait
}

// Unpoll drops Poll's registration, if any: its wake will not be called.
func (sub *Subscription) Unpoll() {
	s := sub.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	i := sub.widx
	if i < 0 {
		return
	}
	last := len(s.wakers) - 1
	if i != last {
		s.wakers[i] = s.wakers[last]
		s.wakers[i].widx = i
	}
	s.wakers[last] = nil
	s.wakers = s.wakers[:last]
	sub.widx = -1
	sub.wake = nil
}

// callWakersLocked calls and drops every Poll registration (rmu held for
// writing, as the wake-up that closes notify).
func (s *Stream) callWakersLocked() {
	s.wmu.Lock()
	if len(s.wakers) == 0 {
		s.wmu.Unlock()
		return
	}
	fns := s.spareFns[:0]
	for i, sub := range s.wakers {
		fns = append(fns, sub.wake)
		sub.widx, sub.wake = -1, nil
		s.wakers[i] = nil
	}
	s.wakers = s.wakers[:0]
	s.wmu.Unlock()
	for i, wake := range fns {
		fns[i] = nil
		wake()
	}
	s.spareFns = fns[:0] // rmu held for writing: no other caller
}
