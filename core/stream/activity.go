package stream

import "time"

// Activity is what a stream did lately, read from its ring (never the
// store), for overviews that poll many streams.
type Activity struct {
	Head uint64
	// Last is the time of the newest data event the ring holds (zero when
	// it holds none, e.g. right after a restart).
	Last time.Time
	// PerSec is data events per second over the window; when the ring
	// holds less than the window, over the span it holds.
	PerSec float64
}

// Activity counts the ring's data events newer than now-window. It holds
// the read lock for at most one ring's length of pointer reads.
func (s *Stream) Activity(now time.Time, window time.Duration) Activity {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	a := Activity{Head: s.head}
	oldest := s.ringOldest()
	n := 0
	var first time.Time
	full := false // the window reaches past the ring's oldest event
	seq := s.head
	for ; seq >= oldest && seq > 0; seq-- {
		e := s.at(seq)
		if e == nil || e.IsControl() {
			continue
		}
		if a.Last.IsZero() {
			a.Last = e.Time
		}
		if now.Sub(e.Time) > window {
			full = true
			break
		}
		n++
		first = e.Time
	}
	if n == 0 {
		return a
	}
	span := window
	if held := now.Sub(first); !full && held > 0 && held < window {
		// The ring ran out inside the window: a fast stream overflowing
		// a full ring, or one that began less than a window ago. Rate
		// over what the ring holds, not over a window it only partly
		// covers (but never over less than a second for a stream just
		// begun, so one fresh event is not a burst).
		if s.head-oldest+1 >= s.mask+1 || held >= time.Second {
			span = held
		}
	}
	a.PerSec = float64(n) / span.Seconds()
	return a
}

// Peek returns the stream name holds, if open, without marking an
// external stream as used (an overview must not keep idle mirrors alive).
func (h *Hub) Peek(name string) (*Stream, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s, ok := h.streams[name]
	return s, ok
}
