package memq

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
)

// The writes. Each is a pure function of the State and its arguments;
// errors are the queue package's, as queue.Driver returns them.

// tick returns the instant a write applies at: its now, or the latest
// instant a write has applied at if that is later. Writers' clocks
// disagree a little and concurrent writes reach the log out of order, so
// a write's now may be earlier than one already applied; without the
// clamp a message a claim skipped as expired could be live again for the
// next write, and a State restored from a snapshot (which no longer knows
// what was skipped) could then decide otherwise than the original.
func (s *State) tick(now time.Time) int64 {
	s.clock = max(s.clock, now.UnixNano())
	return s.clock
}

// CreateQueue creates k with meta; it reports false when k existed.
func (s *State) CreateQueue(k queue.Key, meta json.RawMessage) bool {
	_, created := s.ensure(k, meta)
	return created
}

// SetQueueMetadata replaces k's metadata.
func (s *State) SetQueueMetadata(k queue.Key, meta json.RawMessage) error {
	q := s.queue(k)
	if q == nil {
		return fmt.Errorf("%w: %s", queue.ErrQueueNotFound, k.Queue)
	}
	q.meta = meta
	return nil
}

// DeleteQueue removes k and everything in it.
func (s *State) DeleteQueue(k queue.Key) {
	t := s.tenants[k.Tenant]
	delete(t, k.Queue)
	if len(t) == 0 {
		delete(s.tenants, k.Tenant)
	}
}

// PostMessages stores msgs (creating k) and returns their ids. The State
// keeps the bodies: the caller must not modify them afterwards.
func (s *State) PostMessages(k queue.Key, client uuid.UUID, msgs []queue.NewMessage, now time.Time) []string {
	if len(msgs) == 0 {
		return nil
	}
	q, _ := s.ensure(k, json.RawMessage("{}"))
	n := s.tick(now)
	first := s.seq + 1
	ids := make([]string, len(msgs))
	q.msgs = slices.Grow(q.msgs, len(msgs))
	for i, m := range msgs {
		s.seq++
		exp := n + int64(m.TTL)
		q.msgs = append(q.msgs, msg{seq: s.seq, created: n, expires: exp, ttl: int64(m.TTL), client: client, body: m.Body})
		q.minExp = min(q.minExp, exp)
		ids[i] = MessageID(s.seq)
	}
	q.claims.AddFree(first, s.seq)
	return ids
}

// DeleteMessages deletes ids atomically, as queue.Driver says.
func (s *State) DeleteMessages(k queue.Key, ids, claimIDs []string, now time.Time) error {
	claims := make([]uuid.UUID, 0, len(claimIDs))
	for _, c := range claimIDs {
		u, ok := ParseClaimID(c)
		if !ok {
			return fmt.Errorf("%w: %q is not a claim id", queue.ErrNotClaimedBy, c)
		}
		claims = append(claims, u)
	}
	q := s.queue(k)
	if q == nil {
		return nil
	}
	n := s.tick(now)
	// Check everything first: a rejected delete deletes nothing.
	idx := make([]int, 0, len(ids))
	for _, id := range ids {
		seq := ParseMessageID(id)
		i := q.index(seq)
		if seq == 0 || i < 0 {
			continue
		}
		idx = append(idx, i)
		if q.msgs[i].expires <= n || q.claims.heldByOneOf(seq, n, claims) {
			continue
		}
		_, _, held := q.claims.Holder(seq, n)
		switch {
		case len(claims) == 0 && held:
			return fmt.Errorf("%w (message %s)", queue.ErrClaimed, id)
		case len(claims) > 0:
			return fmt.Errorf("%w (message %s)", queue.ErrNotClaimedBy, id)
		}
	}
	for _, i := range idx {
		if !q.msgs[i].dead { // ids may repeat
			q.remove(i)
		}
	}
	q.compact()
	return nil
}

// PopMessages deletes and returns up to limit free messages, oldest first.
func (s *State) PopMessages(k queue.Key, limit int, now time.Time) []queue.Message {
	q := s.queue(k)
	if q == nil {
		return nil
	}
	n := s.tick(now)
	s.reaped += q.claims.Reap(n)
	seqs := q.take(limit, n)
	out := make([]queue.Message, 0, len(seqs))
	for _, seq := range seqs {
		i := q.index(seq)
		out = append(out, q.message(&q.msgs[i], n))
		q.remove(i)
	}
	q.compact()
	return out
}

// CreateClaim claims up to o.Limit free messages under id, as
// queue.Driver says; with none it returns a Claim with no ID.
func (s *State) CreateClaim(k queue.Key, id uuid.UUID, o queue.ClaimOptions, now time.Time) queue.Claim {
	q := s.queue(k)
	if q == nil {
		return queue.Claim{}
	}
	n := s.tick(now)
	s.reaped += q.claims.Reap(n)
	seqs := q.take(o.Limit, n)
	if len(seqs) == 0 {
		return queue.Claim{}
	}
	exp := n + int64(o.TTL)
	q.claims.Hold(id, seqs, n, exp, int64(o.TTL), int64(o.Grace))
	c := queue.Claim{ID: id.String(), TTL: o.TTL, Grace: o.Grace, Created: unix(n), Expires: unix(exp),
		Messages: make([]queue.Message, 0, len(seqs))}
	for _, seq := range seqs {
		m := &q.msgs[q.index(seq)]
		m.expires = max(m.expires, exp+int64(o.Grace))
		c.Messages = append(c.Messages, q.message(m, n))
	}
	return c
}

// RenewClaim restarts an active claim's ttl from now with a new grace.
func (s *State) RenewClaim(k queue.Key, id string, ttl, grace time.Duration, now time.Time) error {
	cid, ok := ParseClaimID(id)
	q := s.queue(k)
	if !ok || q == nil {
		return fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	c, ok := q.claims.Renew(cid, s.tick(now), int64(ttl), int64(grace))
	if !ok {
		return fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	for _, seq := range c.Seqs {
		if i := q.index(seq); i >= 0 {
			q.msgs[i].expires = max(q.msgs[i].expires, c.Expires+c.Grace)
		}
	}
	return nil
}

// ReleaseClaim frees an active claim's messages; an unknown id is no error.
func (s *State) ReleaseClaim(k queue.Key, id string, now time.Time) {
	cid, ok := ParseClaimID(id)
	if q := s.queue(k); ok && q != nil {
		q.claims.Release(cid, s.tick(now))
	}
}

// Expire purges the messages and claims expired at now and returns how
// many it removed (with the claims other calls found expired since the
// last Expire).
func (s *State) Expire(now time.Time) int {
	n := s.tick(now)
	removed := s.reaped
	s.reaped = 0
	for _, t := range s.tenants {
		for _, q := range t {
			removed += q.claims.Reap(n)
			if q.minExp > n {
				continue
			}
			q.minExp = math.MaxInt64
			for i := range q.msgs {
				m := &q.msgs[i]
				switch {
				case m.dead:
				case m.expires <= n:
					q.remove(i)
					removed++
				default:
					q.minExp = min(q.minExp, m.expires)
				}
			}
			q.compact()
		}
	}
	return removed
}

// NextExpiry returns an instant (Unix ns) at or before which nothing in
// the State expires: Expire at an earlier now would remove nothing. It
// lets an owner skip sweeps that would be no-ops.
func (s *State) NextExpiry() int64 {
	if s.reaped > 0 {
		return math.MinInt64
	}
	next := int64(math.MaxInt64)
	for _, t := range s.tenants {
		for _, q := range t {
			next = min(next, q.minExp, q.claims.nextExpiry())
		}
	}
	return next
}

// take takes up to limit free messages live at now, oldest first.
func (q *queueState) take(limit int, now int64) []uint64 {
	seqs, _ := q.claims.Take(limit, func(seq uint64) (bool, error) { return q.liveAt(seq, now) != nil, nil })
	return seqs
}
