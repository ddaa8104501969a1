package bolt

import (
	"fmt"

	"github.com/sidestream/sidestream/core/stream"
)

// ErrFenced refuses an append whose events come after those of an append
// of the same stream that failed: a stream submits its next commit before
// it knows the outcome of the one in flight, and keeping the later one
// would leave a hole in the history. The stream rolls back and hands the
// failed seqs out again, which the store then takes.
var ErrFenced = fmt.Errorf("bolt: append follows a failed append of its stream: %w", stream.ErrStoreUnavailable)

// fence remembers, per stream whose append with events failed, the first
// seq of the earliest such append not yet taken again. It holds only
// streams with a failure still unanswered by the stream, so it stays
// small; a reopened store starts empty, as the stream's seqs then start
// from the durable head.
//
// Only the committer goroutine touches it (failures are acknowledged
// and groups fenced there), so it needs no lock.
type fence struct {
	after map[string]uint64
}

// failed notes that a's events did not commit.
func (f *fence) failed(a *stream.Append) {
	if len(a.Events) == 0 {
		return
	}
	first := a.Events[0].Seq
	if f.after == nil {
		f.after = map[string]uint64{}
	}
	if cur, ok := f.after[a.Stream]; !ok || first < cur {
		f.after[a.Stream] = first
	}
}

// admits reports whether a may commit: it carries no events, its stream
// has no failure noted, or its events start at or before the failed
// ones (the stream rolled back), which lifts the fence.
func (f *fence) admits(a *stream.Append) bool {
	if len(a.Events) == 0 {
		return true
	}
	failed, ok := f.after[a.Stream]
	switch {
	case !ok:
		return true
	case a.Events[0].Seq <= failed:
		delete(f.after, a.Stream)
		return true
	}
	return false
}

// fenceOut answers ErrFenced to the appends of g the fence refuses and
// returns the others, in order.
func (s *Store) fenceOut(g []*request) []*request {
	kept := g[:0]
	for _, r := range g {
		if r.entry == nil && !s.fence.admits(&r.a) {
			s.ack(r, ErrFenced)
			continue
		}
		kept = append(kept, r)
	}
	return kept
}
