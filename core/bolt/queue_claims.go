package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
)

// CreateClaim implements queue.Driver.
func (d *QueueDriver) CreateClaim(ctx context.Context, k queue.Key, o queue.ClaimOptions, now time.Time) (queue.Claim, error) {
	id := uuid.New()
	name := queueName(k)
	n := now.UnixNano()
	cr := claimRec{created: n, expires: n + int64(o.TTL), ttl: int64(o.TTL), grace: int64(o.Grace)}
	var msgs []queue.Message
	err := d.write(ctx, 128+64*o.Limit, func(tx *bbolt.Tx, ar *arena) error {
		msgs = msgs[:0]
		b := queueBucket(tx, name)
		if b == nil {
			return nil
		}
		mb := b.Bucket(qbktMsgs)
		type upd struct {
			seq uint64
			v   []byte
		}
		var (
			ups  []upd
			slab []byte
		)
		err := scanFree(mb, n, o.Limit, func(seq uint64, r *msgRec) {
			r.claim, r.claimExp = id, cr.expires
			r.expires = max(r.expires, cr.expires+cr.grace)
			v := ar.alloc(msgHdrLen + len(r.body))
			r.encode(v)
			ups = append(ups, upd{seq, v})
			msgs = append(msgs, r.message(seq, n, &slab))
		})
		if err != nil || len(ups) == 0 {
			return err
		}
		seqs := ar.alloc(8 * len(ups))
		for i, u := range ups {
			putSeq(seqs[8*i:], u.seq)
			if err := mb.Put(putU64(ar, u.seq), u.v); err != nil {
				return fmt.Errorf("bolt: claim in %s: %w", k, err)
			}
		}
		cv := ar.alloc(claimHdrLen + len(seqs))
		rec := cr
		rec.seqs = seqs
		rec.encode(cv)
		d.noteExpiry(string(name), cr.expires)
		return b.Bucket(qbktClaims).Put(ar.str(string(id[:])), cv)
	})
	if err != nil || len(msgs) == 0 {
		return queue.Claim{}, err
	}
	return queue.Claim{
		ID: id.String(), TTL: time.Duration(cr.ttl), Grace: time.Duration(cr.grace),
		Created: now.UTC(), Expires: time.Unix(0, cr.expires).UTC(), Messages: msgs,
	}, nil
}

// GetClaim implements queue.Driver.
func (d *QueueDriver) GetClaim(ctx context.Context, k queue.Key, id string, now time.Time) (queue.Claim, error) {
	cid, ok := parseClaimID(id)
	if !ok {
		return queue.Claim{}, fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	n := now.UnixNano()
	var out queue.Claim
	err := d.s.view(ctx, func(tx *bbolt.Tx) error {
		b := queueBucket(tx, queueName(k))
		cr, err := activeClaim(b, cid, n)
		if err != nil {
			return err
		}
		out = queue.Claim{ID: id, TTL: time.Duration(cr.ttl), Grace: time.Duration(cr.grace),
			Created: time.Unix(0, cr.created).UTC(), Expires: time.Unix(0, cr.expires).UTC()}
		var slab []byte
		return forClaimed(b.Bucket(qbktMsgs), &cr, cid, func(seq uint64, r *msgRec) error {
			if r.claimedAt(n) && r.expires > n {
				out.Messages = append(out.Messages, r.message(seq, n, &slab))
			}
			return nil
		})
	})
	return out, err
}

// activeClaim reads claim cid of queue bucket b (nil: no queue).
func activeClaim(b *bbolt.Bucket, cid uuid.UUID, now int64) (claimRec, error) {
	if b == nil {
		return claimRec{}, fmt.Errorf("%w: %s", queue.ErrClaimNotFound, cid)
	}
	v := b.Bucket(qbktClaims).Get(cid[:])
	if v == nil {
		return claimRec{}, fmt.Errorf("%w: %s", queue.ErrClaimNotFound, cid)
	}
	cr, err := decodeClaim(v)
	if err != nil {
		return cr, fmt.Errorf("%w: claim %s: %w", ErrCorrupt, cid, err)
	}
	if cr.expires <= now {
		return cr, fmt.Errorf("%w: %s expired", queue.ErrClaimNotFound, cid)
	}
	return cr, nil
}

// forClaimed calls fn for each message of cr still stamped with cid
// (whether or not the claim is still active).
func forClaimed(mb *bbolt.Bucket, cr *claimRec, cid uuid.UUID, fn func(seq uint64, r *msgRec) error) error {
	for i := range cr.count() {
		seq := cr.seqAt(i)
		key := seqKey(seq)
		v := mb.Get(key[:])
		if v == nil {
			continue
		}
		r, err := decodeMsg(v)
		if err != nil {
			return fmt.Errorf("%w: seq %d: %w", ErrCorrupt, seq, err)
		}
		if r.claim == cid {
			if err := fn(seq, &r); err != nil {
				return err
			}
		}
	}
	return nil
}

// RenewClaim implements queue.Driver.
func (d *QueueDriver) RenewClaim(ctx context.Context, k queue.Key, id string, ttl, grace time.Duration, now time.Time) error {
	return d.updateClaim(ctx, k, id, now, func(cr *claimRec, r *msgRec) {
		if cr != nil {
			cr.expires, cr.ttl, cr.grace = now.UnixNano()+int64(ttl), int64(ttl), int64(grace)
			return
		}
		r.claimExp = now.UnixNano() + int64(ttl)
		r.expires = max(r.expires, r.claimExp+int64(grace))
	}, false)
}

// ReleaseClaim implements queue.Driver.
func (d *QueueDriver) ReleaseClaim(ctx context.Context, k queue.Key, id string, now time.Time) error {
	err := d.updateClaim(ctx, k, id, now, func(cr *claimRec, r *msgRec) {
		if r != nil {
			r.claim, r.claimExp = uuid.Nil, 0
		}
	}, true)
	if errors.Is(err, queue.ErrClaimNotFound) {
		return nil
	}
	return err
}

// updateClaim rewrites an active claim (edit called with the claim, then
// with each message it holds) or, with drop, deletes the claim record.
func (d *QueueDriver) updateClaim(ctx context.Context, k queue.Key, id string, now time.Time,
	edit func(*claimRec, *msgRec), drop bool) error {
	cid, ok := parseClaimID(id)
	if !ok {
		return fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	name := queueName(k)
	n := now.UnixNano()
	var result error
	err := d.write(ctx, 256, func(tx *bbolt.Tx, ar *arena) error {
		b := queueBucket(tx, name)
		cr, err := activeClaim(b, cid, n)
		if result = err; errors.Is(err, queue.ErrClaimNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		mb := b.Bucket(qbktMsgs)
		edit(&cr, nil)
		var keys, vals [][]byte
		err = forClaimed(mb, &cr, cid, func(seq uint64, r *msgRec) error {
			edit(nil, r)
			v := ar.alloc(msgHdrLen + len(r.body))
			r.encode(v)
			keys, vals = append(keys, putU64(ar, seq)), append(vals, v)
			return nil
		})
		if err != nil {
			return err
		}
		for i := range keys {
			if err := mb.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		cb := b.Bucket(qbktClaims)
		if drop {
			return cb.Delete(cid[:])
		}
		cv := ar.alloc(claimHdrLen + len(cr.seqs))
		cr.encode(cv)
		return cb.Put(ar.str(string(cid[:])), cv)
	})
	return errors.Join(err, result)
}

// expireChunk bounds the entries one sweep transaction examines.
const expireChunk = 16384

// Expire implements queue.Driver. It runs as bounded chunks through the
// committer, like Prune, so posts interleave with a long sweep.
func (d *QueueDriver) Expire(ctx context.Context, now time.Time) (int, error) {
	e := &expirer{d: d, now: now.UnixNano()}
	for !e.cur.done {
		if err := d.write(ctx, 64, e.chunk); err != nil {
			return e.cur.removed, err
		}
		e.cur = e.next
	}
	return e.cur.removed, nil
}

type expirer struct {
	d         *QueueDriver
	now       int64
	cur, next expireState
}

type expireState struct {
	queue   string // bucket being swept ("" before the first)
	from    uint64 // next seq to examine in it
	minExp  int64  // earliest expiry left in it so far
	removed int
	done    bool
}

// chunk reads e.cur and writes e.next, so a replay is harmless.
func (e *expirer) chunk(tx *bbolt.Tx, _ *arena) error {
	st := e.cur
	budget := expireChunk
	c := tx.Bucket(bktQueues).Cursor()
	var k []byte
	if st.queue == "" {
		k, _ = c.First()
	} else {
		k, _ = c.Seek([]byte(st.queue))
	}
	for ; k != nil; k, _ = c.Next() {
		name := string(k)
		if name != st.queue {
			st = expireState{queue: name, minExp: math.MaxInt64, removed: st.removed}
			if e.quiet(name) {
				continue
			}
		}
		b := tx.Bucket(bktQueues).Bucket(k)
		finished, err := e.sweepQueue(b, &st, &budget)
		if err != nil {
			return fmt.Errorf("bolt: expire %q: %w", name, err)
		}
		if !finished {
			e.next = st
			return nil
		}
		e.d.mu.Lock()
		e.d.nextExpiry[name] = st.minExp
		e.d.mu.Unlock()
	}
	st.done = true
	e.next = st
	return nil
}

func (e *expirer) quiet(name string) bool {
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	at, ok := e.d.nextExpiry[name]
	return ok && at > e.now
}

// sweepQueue removes what expired in one queue, from st.from on, within
// budget; it reports whether the queue is done.
func (e *expirer) sweepQueue(b *bbolt.Bucket, st *expireState, budget *int) (bool, error) {
	if b == nil {
		return true, nil
	}
	if st.from == 0 {
		if err := e.sweepClaims(b.Bucket(qbktClaims), st); err != nil {
			return false, err
		}
		st.from = 1
	}
	mb := b.Bucket(qbktMsgs)
	var dels []uint64
	c := mb.Cursor()
	from := seqKey(st.from)
	finished := true
	for key, v := c.Seek(from[:]); key != nil; key, v = c.Next() {
		if *budget--; *budget < 0 {
			st.from, finished = keySeq(key), false
			break
		}
		r, err := decodeMsg(v)
		if err != nil {
			return false, fmt.Errorf("%w: seq %d: %w", ErrCorrupt, keySeq(key), err)
		}
		if r.expires <= e.now {
			dels = append(dels, keySeq(key))
		} else {
			st.minExp = min(st.minExp, r.expires)
		}
	}
	for _, seq := range dels {
		key := seqKey(seq)
		if err := mb.Delete(key[:]); err != nil {
			return false, err
		}
	}
	st.removed += len(dels)
	return finished, nil
}

func (e *expirer) sweepClaims(cb *bbolt.Bucket, st *expireState) error {
	var dels [][]byte
	c := cb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		cr, err := decodeClaim(v)
		if err != nil {
			return fmt.Errorf("%w: claim: %w", ErrCorrupt, err)
		}
		if cr.expires <= e.now {
			dels = append(dels, bytes.Clone(k))
		} else {
			st.minExp = min(st.minExp, cr.expires)
		}
	}
	for _, k := range dels {
		if err := cb.Delete(k); err != nil {
			return err
		}
	}
	st.removed += len(dels)
	return nil
}
