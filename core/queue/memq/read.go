package memq

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
)

// The reads. They do not modify the State, so they may run concurrently
// with each other.

// listScanLimit bounds the messages one list looks at beyond its limit
// (claimed or echoed ones it skips), so one call never walks a huge queue.
const listScanLimit = 4096

// QueueMetadata returns k's metadata or queue.ErrQueueNotFound.
func (s *State) QueueMetadata(k queue.Key) (json.RawMessage, error) {
	q := s.queue(k)
	if q == nil {
		return nil, fmt.Errorf("%w: %s", queue.ErrQueueNotFound, k.Queue)
	}
	return q.meta, nil
}

// ListQueues returns up to limit queues of tenant named after marker.
func (s *State) ListQueues(tenant, marker string, limit int) []queue.QueueInfo {
	t := s.tenants[tenant]
	names := make([]string, 0, len(t))
	for name := range t {
		if name > marker {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = names[:min(limit, len(names))]
	out := make([]queue.QueueInfo, len(names))
	for i, name := range names {
		out[i] = queue.QueueInfo{Name: name, Metadata: t[name].meta}
	}
	return out
}

// QueueStats counts k's live messages at now.
func (s *State) QueueStats(k queue.Key, now time.Time) queue.Stats {
	var st queue.Stats
	q := s.queue(k)
	if q == nil {
		return st
	}
	n := now.UnixNano()
	for i := range q.msgs {
		m := &q.msgs[i]
		if m.dead || m.expires <= n {
			continue
		}
		st.Total++
		if _, _, held := q.claims.Holder(m.seq, n); held {
			st.Claimed++
		} else {
			st.Free++
		}
		ms := &queue.MessageStat{ID: MessageID(m.seq), Created: unix(m.created)}
		if st.Oldest == nil {
			st.Oldest = ms
		}
		st.Newest = ms
	}
	return st
}

// ListMessages returns a page of k's live messages in post order.
func (s *State) ListMessages(k queue.Key, o queue.ListOptions, now time.Time) queue.Page {
	var page queue.Page
	q := s.queue(k)
	if q == nil {
		return page
	}
	var client uuid.UUID
	if !o.Echo {
		client, _ = uuid.Parse(o.ClientID)
	}
	n := now.UnixNano()
	from, _ := slices.BinarySearchFunc(q.msgs, ParseMessageID(o.Marker)+1, func(m msg, s uint64) int { return cmp.Compare(m.seq, s) })
	scanned := 0
	for i := from; i < len(q.msgs) && len(page.Messages) < o.Limit; i++ {
		m := &q.msgs[i]
		if m.dead {
			continue
		}
		if scanned++; scanned > o.Limit+listScanLimit {
			break
		}
		page.Marker = MessageID(m.seq)
		_, _, held := q.claims.Holder(m.seq, n)
		if m.expires <= n || (!o.IncludeClaimed && held) || (client != uuid.Nil && m.client == client) {
			continue
		}
		page.Messages = append(page.Messages, q.message(m, n))
	}
	return page
}

// GetMessages returns the live messages among ids, in the order of ids.
func (s *State) GetMessages(k queue.Key, ids []string, now time.Time) []queue.Message {
	q := s.queue(k)
	if q == nil {
		return nil
	}
	n := now.UnixNano()
	var out []queue.Message
	for _, id := range ids {
		if m := q.liveAt(ParseMessageID(id), n); m != nil {
			out = append(out, q.message(m, n))
		}
	}
	return out
}

// GetClaim returns an active claim with the messages it still holds.
func (s *State) GetClaim(k queue.Key, id string, now time.Time) (queue.Claim, error) {
	cid, ok := ParseClaimID(id)
	q := s.queue(k)
	if !ok || q == nil {
		return queue.Claim{}, fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	n := now.UnixNano()
	c, ok := q.claims.Active(cid, n)
	if !ok {
		return queue.Claim{}, fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	out := queue.Claim{ID: cid.String(), TTL: ns(c.TTL), Grace: ns(c.Grace),
		Created: unix(c.Created), Expires: unix(c.Expires)}
	for _, seq := range c.Seqs {
		if m := q.liveAt(seq, n); m != nil {
			out.Messages = append(out.Messages, q.message(m, n))
		}
	}
	return out, nil
}

// Claimable reports whether a claim or pop of k at now could get a
// message: false means surely not. An owner can answer such a call
// without making it a write.
func (s *State) Claimable(k queue.Key, now time.Time) bool {
	q := s.queue(k)
	return q != nil && q.claims.MayTake(now.UnixNano())
}
