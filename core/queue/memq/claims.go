package memq

import (
	"container/heap"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue/seqmap"
)

// Claims is the claim table of one queue: which claim holds which message
// (by seq), and which seqs may be free. It knows nothing of message
// bodies or expiry: every decision that needs the store asks a live
// function, so a driver with another message store can reuse it.
// Not safe for concurrent use; the owner serializes calls.
type Claims struct {
	// free holds the seqs that may be claimable, oldest first. It may also
	// hold deleted, expired or duplicate seqs (checked when taken), but
	// never misses a free one: claims never rescan the queue.
	free  runHeap
	owner seqmap.Map[*claim] // seq → claim holding it (maybe expired, not yet reaped)
	byID  map[uuid.UUID]*claim
	byExp claimHeap
}

// claim is one claim; times are Unix ns.
type claim struct {
	id                           uuid.UUID
	created, expires, ttl, grace int64
	seqs                         []uint64 // claimed, in order; owner says which it still holds
	live                         int      // how many of seqs it still holds
	hidx                         int
}

// NewClaims returns an empty table.
func NewClaims() *Claims {
	return &Claims{byID: map[uuid.UUID]*claim{}}
}

// AddFree makes the seqs lo..hi candidates for claims (a post, in order).
func (c *Claims) AddFree(lo, hi uint64) { c.free.push(lo, hi) }

// Holder returns the id and expiry of the active claim holding seq.
func (c *Claims) Holder(seq uint64, now int64) (uuid.UUID, int64, bool) {
	if cl, _ := c.owner.Get(seq); cl != nil && cl.expires > now {
		return cl.id, cl.expires, true
	}
	return uuid.Nil, 0, false
}

// heldByOneOf reports whether an active claim among ids holds seq.
func (c *Claims) heldByOneOf(seq uint64, now int64, ids []uuid.UUID) bool {
	h, _, ok := c.Holder(seq, now)
	if !ok {
		return false
	}
	for _, id := range ids {
		if id == h {
			return true
		}
	}
	return false
}

// Take removes and returns up to limit free seqs that accept takes,
// oldest first. accept sees each candidate no claim holds, once; a
// candidate it refuses is dropped for good (the store deleted it, it
// expired, or a delete in progress has it: its owner frees it again with
// Free if that fails). An error from accept puts the candidate back and
// ends the take.
func (c *Claims) Take(limit int, accept func(seq uint64) (bool, error)) ([]uint64, error) {
	out := make([]uint64, 0, max(limit, 0))
	var prev uint64
	for len(out) < limit {
		seq, ok := c.free.take()
		if !ok {
			break
		}
		// A seq may be a candidate twice; the heap yields copies in a row.
		if seq == prev || c.owner.Has(seq) {
			continue
		}
		prev = seq
		ok, err := accept(seq)
		if err != nil {
			c.free.push(seq, seq)
			return out, err
		}
		if ok {
			out = append(out, seq)
		}
	}
	return out, nil
}

// Free makes seq a candidate again unless a claim holds it (a delete or
// pop of it that failed).
func (c *Claims) Free(seq uint64) {
	if !c.owner.Has(seq) {
		c.free.push(seq, seq)
	}
}

// Hold records claim id over seqs (taken by Take) until expires.
func (c *Claims) Hold(id uuid.UUID, seqs []uint64, created, expires, ttl, grace int64) {
	cl := &claim{id: id, created: created, expires: expires, ttl: ttl, grace: grace, seqs: seqs, live: len(seqs)}
	for _, seq := range seqs {
		c.owner.Set(seq, cl)
	}
	c.byID[id] = cl
	heap.Push(&c.byExp, cl)
}

// ClaimInfo is an active claim as the table knows it.
type ClaimInfo struct {
	ID                           uuid.UUID
	Created, Expires, TTL, Grace int64
	// Seqs are the messages it still holds, in claim order.
	Seqs []uint64
}

// Active returns claim id if it is active at now.
func (c *Claims) Active(id uuid.UUID, now int64) (ClaimInfo, bool) {
	cl := c.byID[id]
	if cl == nil || cl.expires <= now {
		return ClaimInfo{}, false
	}
	return c.info(cl), true
}

func (c *Claims) info(cl *claim) ClaimInfo {
	ci := ClaimInfo{ID: cl.id, Created: cl.created, Expires: cl.expires, TTL: cl.ttl, Grace: cl.grace,
		Seqs: make([]uint64, 0, cl.live)}
	for _, seq := range cl.seqs {
		if o, _ := c.owner.Get(seq); o == cl {
			ci.Seqs = append(ci.Seqs, seq)
		}
	}
	return ci
}

// Renew restarts active claim id at now with ttl and grace; it returns
// the claim as renewed, or false when it is not active.
func (c *Claims) Renew(id uuid.UUID, now, ttl, grace int64) (ClaimInfo, bool) {
	cl := c.byID[id]
	if cl == nil || cl.expires <= now {
		return ClaimInfo{}, false
	}
	cl.expires, cl.ttl, cl.grace = now+ttl, ttl, grace
	heap.Fix(&c.byExp, cl.hidx)
	return c.info(cl), true
}

// Release frees the messages of active claim id and drops it; it reports
// whether there was one.
func (c *Claims) Release(id uuid.UUID, now int64) bool {
	cl := c.byID[id]
	if cl == nil || cl.expires <= now {
		return false
	}
	c.free1(cl)
	c.drop(cl)
	return true
}

// free1 makes the seqs cl still holds free again.
func (c *Claims) free1(cl *claim) {
	for _, seq := range cl.seqs {
		if o, _ := c.owner.Get(seq); o == cl {
			c.owner.Delete(seq)
			c.free.push(seq, seq)
		}
	}
}

// Reap frees the messages of claims expired at now and returns how many
// claims it removed.
func (c *Claims) Reap(now int64) int {
	n := 0
	for len(c.byExp) > 0 && c.byExp[0].expires <= now {
		cl := heap.Pop(&c.byExp).(*claim)
		c.free1(cl)
		delete(c.byID, cl.id)
		n++
	}
	return n
}

// Forget drops what the table knows of a deleted message; a claim left
// holding nothing is dropped.
func (c *Claims) Forget(seq uint64) {
	if cl, _ := c.owner.Get(seq); cl != nil {
		c.owner.Delete(seq)
		if cl.live--; cl.live == 0 {
			c.drop(cl)
		}
	}
}

func (c *Claims) drop(cl *claim) {
	if c.byID[cl.id] != cl {
		return
	}
	delete(c.byID, cl.id)
	heap.Remove(&c.byExp, cl.hidx)
}

// All returns every claim of the table (active or not yet reaped), for
// snapshots, in no particular order.
func (c *Claims) All() []ClaimInfo {
	out := make([]ClaimInfo, 0, len(c.byID))
	for _, cl := range c.byID {
		out = append(out, c.info(cl))
	}
	return out
}

// seqRun is the seqs lo..hi.
type seqRun struct{ lo, hi uint64 }

// runHeap is a min-heap of runs by lo: posts push one run per batch.
type runHeap []seqRun

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].lo < h[j].lo }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(seqRun)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *runHeap) push(lo, hi uint64) { heap.Push(h, seqRun{lo, hi}) }

// take removes and returns the lowest seq.
func (h *runHeap) take() (uint64, bool) {
	if len(*h) == 0 {
		return 0, false
	}
	r := &(*h)[0]
	seq := r.lo
	if r.lo == r.hi {
		heap.Pop(h)
	} else {
		r.lo++
		heap.Fix(h, 0)
	}
	return seq, true
}

// claimHeap orders claims by expiry.
type claimHeap []*claim

func (h claimHeap) Len() int           { return len(h) }
func (h claimHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h claimHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *claimHeap) Push(x any) {
	cl := x.(*claim)
	cl.hidx = len(*h)
	*h = append(*h, cl)
}
func (h *claimHeap) Pop() any {
	old := *h
	cl := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	cl.hidx = -1
	return cl
}

// nextExpiry is when the first claim expires (MaxInt64: none).
func (c *Claims) nextExpiry() int64 {
	if len(c.byExp) == 0 {
		return 1<<63 - 1
	}
	return c.byExp[0].expires
}

// MayTake reports whether a Take at now could find anything: false means
// surely not (no candidate, and no claim expired to free its messages).
func (c *Claims) MayTake(now int64) bool {
	return len(c.free) > 0 || c.nextExpiry() <= now
}
