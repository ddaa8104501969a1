package queueapi

import (
	"github.com/sidestream/sidestream/core/queue/memq"
	"github.com/sidestream/sidestream/core/queue/seqmap"
)

// inflight is a subscription's delivered and not yet deleted messages,
// each with its claim's expiry (Unix nanoseconds). Ids in the drivers'
// format (memq.MessageID, a seq in hex) are kept by seq in a
// seqmap.Map: a Go map of id strings, hashed and probed on every
// delivered and every deleted message, was ~4% of the server's CPU under
// queue load. Any other id is kept by string.
type inflight struct {
	seqs  seqmap.Map[int64]
	other map[string]int64
}

func (f *inflight) set(id string, exp int64) {
	if seq := memq.ParseMessageID(id); seq != 0 {
		f.seqs.Set(seq, exp)
		return
	}
	if f.other == nil {
		f.other = map[string]int64{}
	}
	f.other[id] = exp
}

func (f *inflight) delete(id string) {
	if seq := memq.ParseMessageID(id); seq != 0 {
		f.seqs.Delete(seq)
		return
	}
	delete(f.other, id)
}

func (f *inflight) len() int { return f.seqs.Len() + len(f.other) }

// expire forgets the messages whose claim expired by now and returns the
// earliest expiry left (0: none).
func (f *inflight) expire(now int64) int64 {
	var soonest int64
	keep := func(exp int64) bool {
		if exp <= now {
			return false
		}
		if soonest == 0 || exp < soonest {
			soonest = exp
		}
		return true
	}
	var gone []uint64
	for seq, exp := range f.seqs.All() {
		if !keep(exp) {
			gone = append(gone, seq)
		}
	}
	for _, seq := range gone {
		f.seqs.Delete(seq)
	}
	for id, exp := range f.other {
		if !keep(exp) {
			delete(f.other, id)
		}
	}
	return soonest
}
