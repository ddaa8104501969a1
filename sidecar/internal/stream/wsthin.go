package streamhttp

import (
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/sidecar/internal/thin"
)

// wsThin is a session's MaxRate: its thinner and the timer that wakes
// the writer when a pending skipped marker is due. Without MaxRate it
// passes the events through (th nil).
type wsThin struct {
	s     *WSSession
	th    *thin.Thinner
	out   []*event.Event
	timer *time.Timer
}

func newWSThin(s *WSSession) *wsThin {
	w := &wsThin{s: s}
	if s.o.MaxRate > 0 {
		w.th = thin.New(s.o.MaxRate)
		w.timer = time.AfterFunc(time.Hour, s.poke)
		w.timer.Stop()
	}
	return w
}

func (w *wsThin) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// write writes evs, thinned with MaxRate, and arms the timer for the
// marker of what was left out if no event comes to carry it.
func (w *wsThin) write(evs []*event.Event) error {
	if w.th == nil {
		return w.s.writeEvents(evs)
	}
	now := time.Now()
	w.out = w.th.Thin(now, w.out[:0], evs)
	if w.th.Pending() {
		w.timer.Reset(max(w.th.Due(now), time.Millisecond))
	}
	return w.writeOut()
}

// flushDue writes the pending marker once it is due. idle: the writer
// woke with nothing to write (maybe by the timer, a little early).
func (w *wsThin) flushDue(idle bool) error {
	if w.th == nil || !w.th.Pending() {
		return nil
	}
	if d := w.th.Due(time.Now()); d > 0 {
		if idle {
			w.timer.Reset(d) // not yet: wake again then
		}
		return nil
	}
	return w.flush()
}

// flush writes the pending marker, if any.
func (w *wsThin) flush() error {
	if w.th == nil {
		return nil
	}
	w.out = w.th.Flush(w.out[:0])
	return w.writeOut()
}

func (w *wsThin) writeOut() error {
	if len(w.out) == 0 {
		return nil
	}
	err := w.s.writeEvents(w.out)
	clear(w.out)
	return err
}
