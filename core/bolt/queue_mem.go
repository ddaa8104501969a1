package bolt

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue/memq"
	"github.com/sidestream/sidestream/core/queue/seqmap"
)

// Claims live in memory (memQueue), and are written to the file lazily.
//
// Why that is safe. A claim only decides who may delete a message; it
// never decides whether a message exists. So:
//
//   - A post is acknowledged once its commit is durable, and only then do
//     its seqs become claimable (QueueDriver.posted, on the committer once
//     the journal record is durable, or PostMessages after a B-tree commit),
//     so no consumer ever sees a message that a crash could take back.
//   - A delete is acknowledged once it is durable (in the journal, which
//     replays it after a crash), and a deleted message is gone from every
//     read from then on, so no crash and no lost claim can deliver it
//     again after its delete was acknowledged.
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
// file on first use: the claim table shared with the other queue drivers
// (memq.Claims) plus what only a lazily written file needs. Guarded by
// QueueDriver.qmu.
type memQueue struct {
	claims *memq.Claims
	// pinned seqs are being deleted or popped by a commit in progress.
	pinned seqmap.Map[struct{}]
	// extend is a message's life extended by a claim beyond its stored
	// expiry, until the claim is flushed.
	extend map[uint64]int64
	// unflushed are the claims not yet written to the file, each with
	// whether the last Expire sweep saw it (flushed by the next one).
	unflushed map[uuid.UUID]bool
}

func newMemQueue() *memQueue {
	return &memQueue{claims: memq.NewClaims(), extend: map[uint64]int64{}, unflushed: map[uuid.UUID]bool{}}
}

// loadMem rebuilds a queue's claim state from its bucket and the
// journaled writes p not yet in it: stamped messages whose claim is still
// active belong to that claim; every other message is a free candidate.
// It also returns the highest seq stored.
func loadMem(b *bbolt.Bucket, p *pendQueue, now int64) (*memQueue, uint64, error) {
	m := newMemQueue()
	cb := b.Bucket(qbktClaims)
	run := seqRun{}
	flush := func() {
		if run.hi != 0 {
			m.claims.AddFree(run.lo, run.hi)
		}
		run = seqRun{}
	}
	type loaded struct {
		created, expires, ttl, grace int64
		seqs                         []uint64
	}
	held := map[uuid.UUID]*loaded{}
	var order []uuid.UUID
	top := keySeq(b.Get(qkSeq))
	err := eachMsg(b.Bucket(qbktMsgs), p, 1, func(seq uint64, v []byte) (bool, error) {
		top = max(top, seq)
		r, err := decodeMsg(v)
		if err != nil {
			return false, fmt.Errorf("%w: seq %d: %w", ErrCorrupt, seq, err)
		}
		if !r.claimedAt(now) {
			if run.hi != 0 && seq == run.hi+1 {
				run.hi = seq
			} else {
				flush()
				run = seqRun{seq, seq}
			}
			return true, nil
		}
		flush()
		cl := held[r.claim]
		if cl == nil {
			cl = &loaded{created: r.created, expires: r.claimExp}
			if v := cb.Get(r.claim[:]); v != nil {
				if cr, err := decodeClaim(v); err == nil {
					cl.created, cl.ttl, cl.grace = cr.created, cr.ttl, cr.grace
				}
			}
			held[r.claim] = cl
			order = append(order, r.claim)
		}
		cl.seqs = append(cl.seqs, seq)
		return true, nil
	})
	if err != nil {
		return nil, 0, err
	}
	flush()
	for _, id := range order {
		cl := held[id]
		m.claims.Hold(id, cl.seqs, cl.created, cl.expires, cl.ttl, cl.grace)
	}
	return m, top, nil
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
			m, top, err := loadMem(b, d.pend[name], now)
			if err != nil {
				return err
			}
			d.mem[name] = m
			d.seqs[name] = max(d.seqs[name], top)
			return fn(tx, b, m)
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

// holder returns the id of the active claim holding seq, if any.
func (m *memQueue) holder(seq uint64, now int64) (uuid.UUID, bool) {
	if m == nil {
		return uuid.Nil, false
	}
	id, _, ok := m.claims.Holder(seq, now)
	return id, ok
}

// overlay makes r show the claim state kept in memory.
func (m *memQueue) overlay(seq uint64, r *msgRec, now int64) {
	if m == nil {
		return
	}
	r.claim, r.claimExp = uuid.Nil, 0
	if id, exp, ok := m.claims.Holder(seq, now); ok {
		r.claim, r.claimExp = id, exp
	}
	if e, ok := m.extend[seq]; ok && e > r.expires {
		r.expires = e
	}
}

// unpin ends a delete or pop: on success the seqs are forgotten, else
// they are candidates again.
func (m *memQueue) unpin(seqs []uint64, ok bool) {
	for _, seq := range seqs {
		m.pinned.Delete(seq)
		if ok {
			m.claims.Forget(seq)
			delete(m.extend, seq)
		} else {
			m.claims.Free(seq)
		}
	}
}

// seqRun is the seqs lo..hi.
type seqRun struct{ lo, hi uint64 }
