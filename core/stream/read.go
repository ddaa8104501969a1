package stream

import (
	"context"

	"github.com/sidestream/sidestream/core/event"
)

// ReadAfter returns up to limit visible events with seq > after, ascending,
// from the ring or, for older ones, the history.
func (s *Stream) ReadAfter(ctx context.Context, after uint64, limit int) ([]*event.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.rmu.RLock()
	head, oldest := s.head, s.ringOldest()
	if after+1 >= oldest || !s.cfg.Persist {
		from := max(after+1, oldest)
		var out []*event.Event
		for seq := from; seq <= head && len(out) < limit; seq++ {
			if e := s.at(seq); e != nil && !e.IsControl() {
				out = append(out, e)
			}
		}
		s.rmu.RUnlock()
		return out, nil
	}
	s.rmu.RUnlock()
	evs, err := s.hist.ReadAfter(ctx, s.name, after, limit)
	if err != nil {
		return nil, err
	}
	return clip(evs, head), nil
}

// ReadBefore returns the newest up to limit visible events with seq <
// before (before == 0: the newest), ascending.
func (s *Stream) ReadBefore(ctx context.Context, before uint64, limit int) ([]*event.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.rmu.RLock()
	head, oldest := s.head, s.ringOldest()
	top := head
	if before != 0 && before-1 < top {
		top = before - 1
	}
	if !s.cfg.Persist || (top >= oldest && top-oldest+1 >= uint64(limit)) {
		var out []*event.Event
		for seq := top; seq >= oldest && seq > 0 && len(out) < limit; seq-- {
			if e := s.at(seq); e != nil && !e.IsControl() {
				out = append(out, e)
			}
		}
		s.rmu.RUnlock()
		reverse(out)
		return out, nil
	}
	s.rmu.RUnlock()
	evs, err := s.hist.ReadBefore(ctx, s.name, top+1, limit)
	if err != nil {
		return nil, err
	}
	return clip(evs, head), nil
}

// clip drops events committed but not yet visible, so pages never show
// what subscribers have not been offered.
func clip(evs []*event.Event, head uint64) []*event.Event {
	for i, e := range evs {
		if e.Seq > head {
			return evs[:i]
		}
	}
	return evs
}

func reverse(evs []*event.Event) {
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
}
