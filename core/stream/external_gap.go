package stream

import "github.com/sidestream/sidestream/core/event"

// DeliverGap makes the seqs after the head up to to, which the source no
// longer holds, visible as one gap marker (subscribers passing through get
// it, as they would from a local stream's history). It reports false, and
// changes nothing, when from is beyond head+1 (deliver what comes first).
func (s *Stream) DeliverGap(from, to uint64) bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed || to <= s.head {
		return true
	}
	if from > s.head+1 {
		return false
	}
	s.ring[to&s.mask] = event.Gap(s.name, s.head+1, to)
	s.advanceLocked(to, 1)
	return true
}
