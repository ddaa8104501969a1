package bolt

import (
	"container/heap"
	"context"
	"fmt"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"
)

// Claims live in memory (memQueue), and are written to the file lazily.
//
// Why that is safe. A claim only decides who may delete a message; it
// never decides whether a message exists. So:
//
//   - A post is acknowledged once its commit is durable, and only then do
//     its seqs become claimable (PostMessages pushes them after the commit),
//     so no consumer ever sees a message that a crash could take back.
//   - A delete is acknowledged once its commit is durable, and a deleted
//     message is gone from the file, so no crash and no lost claim can
//     deliver it again after its delete was acknowledged.
//   - A claim is exclusive while the process runs: every claim decision is
//     made under QueueDriver.qmu from this one in-memory table.
//   - A crash (or a close) before a claim was flushed loses only the claim:
//     its messages are free again after the restart and are delivered
//     again (at-least-once), and the old claim id deletes nothing
//     (ErrNotClaimedBy), exactly as if the claim had expired.
//
// Claims are flushed (message stamps + claim record) by the second Expire
// sweep that finds them active (so within two sweep intervals, 1 s each
// under queue.Service), by RenewClaim, and never for claims whose
// messages were all deleted first, which is the common case at high
// rates: a claim then costs no write and no fsync at all.

// memQueue is the in-memory claim state of one queue, loaded from the
// file on first use. Guarded by QueueDriver.qmu.
type memQueue struct {
	// free holds the seqs that may be claimable, oldest first. It may also
	// hold deleted, expired or duplicate seqs (checked when taken), but
	// never misses a free one: claims never rescan the queue.
	free   runHeap
	owner  map[uint64]*memClaim // seq → claim holding it (maybe expired, not yet reaped)
	claims map[uuid.UUID]*memClaim
	byExp  claimHeap
	// pinned seqs are being deleted or popped by a commit in progress.
	pinned map[uint64]struct{}
	// extend is a message's life extended by a claim beyond its stored
	// expiry, until the claim is flushed.
	extend map[uint64]int64
}

type memClaim struct {
	id                           uuid.UUID
	created, expires, ttl, grace int64
	seqs                         []uint64 // claimed, in order; owner says which it still holds
	live                         int      // how many of seqs it still holds
	flushed                      bool
	seen                         bool // pending at the last flush: flush at the next
	hidx                         int
}

func newMemQueue() *memQueue {
	return &memQueue{owner: map[uint64]*memClaim{}, claims: map[uuid.UUID]*memClaim{},
		pinned: map[uint64]struct{}{}, extend: map[uint64]int64{}}
}

// loadMem rebuilds a queue's claim state from its bucket: stamped
// messages whose claim is still active belong to that claim; every other
// message is a free candidate.
func loadMem(b *bbolt.Bucket, now int64) (*memQueue, error) {
	m := newMemQueue()
	cb := b.Bucket(qbktClaims)
	run := seqRun{}
	flush := func() {
		if run.hi != 0 {
			m.free.push(run.lo, run.hi)
		}
		run = seqRun{}
	}
	c := b.Bucket(qbktMsgs).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seq := keySeq(k)
		r, err := decodeMsg(v)
		if err != nil {
			return nil, fmt.Errorf("%w: seq %d: %w", ErrCorrupt, seq, err)
		}
		if !r.claimedAt(now) {
			if run.hi != 0 && seq == run.hi+1 {
				run.hi = seq
			} else {
				flush()
				run = seqRun{seq, seq}
			}
			continue
		}
		flush()
		cl := m.claims[r.claim]
		if cl == nil {
			cl = &memClaim{id: r.claim, created: r.created, expires: r.claimExp, flushed: true}
			if v := cb.Get(r.claim[:]); v != nil {
				if cr, err := decodeClaim(v); err == nil {
					cl.created, cl.ttl, cl.grace = cr.created, cr.ttl, cr.grace
				}
			}
			m.claims[r.claim] = cl
			heap.Push(&m.byExp, cl)
		}
		cl.seqs = append(cl.seqs, seq)
		cl.live++
		m.owner[seq] = cl
	}
	flush()
	return m, nil
}

// withMem runs fn in a read transaction with name's claim state (nil
// when the queue does not exist), holding qmu. The transaction begins
// under qmu, so it sees every post whose seqs were pushed to free.
func (d *QueueDriver) withMem(ctx context.Context, name string, now int64, fn func(tx *bbolt.Tx, b *bbolt.Bucket, m *memQueue) error) error {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	return d.s.viewDirect(ctx, func(tx *bbolt.Tx) error {
		b := queueBucket(tx, []byte(name))
		if b == nil {
			return fn(tx, nil, nil)
		}
		m := d.mem[name]
		if m == nil {
			var err error
			if m, err = loadMem(b, now); err != nil {
				return err
			}
			d.mem[name] = m
		}
		return fn(tx, b, m)
	})
}

// loaded makes sure name's claim state is in memory, so committer ops
// (which must not open read transactions) find it.
func (d *QueueDriver) loaded(ctx context.Context, name string, now int64) error {
	d.qmu.Lock()
	_, ok := d.mem[name]
	d.qmu.Unlock()
	if ok {
		return nil
	}
	return d.withMem(ctx, name, now, func(*bbolt.Tx, *bbolt.Bucket, *memQueue) error { return nil })
}

// holder returns the active claim holding seq, if any.
func (m *memQueue) holder(seq uint64, now int64) *memClaim {
	if m == nil {
		return nil
	}
	if c := m.owner[seq]; c != nil && c.expires > now {
		return c
	}
	return nil
}

// overlay makes r show the claim state kept in memory.
func (m *memQueue) overlay(seq uint64, r *msgRec, now int64) {
	if m == nil {
		return
	}
	r.claim, r.claimExp = uuid.Nil, 0
	if c := m.owner[seq]; c != nil {
		r.claim, r.claimExp = c.id, c.expires
	}
	if e, ok := m.extend[seq]; ok && e > r.expires {
		r.expires = e
	}
}

// reap frees the messages of claims expired at now; it returns how many
// claims it removed.
func (m *memQueue) reap(now int64) int {
	n := 0
	for len(m.byExp) > 0 && m.byExp[0].expires <= now {
		c := heap.Pop(&m.byExp).(*memClaim)
		for _, seq := range c.seqs {
			if m.owner[seq] == c {
				delete(m.owner, seq)
				m.free.push(seq, seq)
			}
		}
		delete(m.claims, c.id)
		n++
	}
	return n
}

// forget drops what memory knows of a deleted message.
func (m *memQueue) forget(seq uint64) {
	if c := m.owner[seq]; c != nil {
		delete(m.owner, seq)
		if c.live--; c.live == 0 {
			m.dropClaim(c)
		}
	}
	delete(m.extend, seq)
}

func (m *memQueue) dropClaim(c *memClaim) {
	if m.claims[c.id] != c {
		return
	}
	delete(m.claims, c.id)
	heap.Remove(&m.byExp, c.hidx)
}

// unpin ends a delete or pop: on success the seqs are forgotten, else
// they are candidates again.
func (m *memQueue) unpin(seqs []uint64, ok bool) {
	for _, seq := range seqs {
		delete(m.pinned, seq)
		switch {
		case ok:
			m.forget(seq)
		case m.owner[seq] == nil:
			m.free.push(seq, seq)
		}
	}
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
type claimHeap []*memClaim

func (h claimHeap) Len() int           { return len(h) }
func (h claimHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h claimHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *claimHeap) Push(x any) {
	c := x.(*memClaim)
	c.hidx = len(*h)
	*h = append(*h, c)
}
func (h *claimHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.hidx = -1
	return c
}
