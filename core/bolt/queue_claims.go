package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
)

// CreateClaim implements queue.Driver. The claim is made in memory under
// qmu, with no commit: see queue_mem.go for why that keeps delivery
// at-least-once and deletes final.
func (d *QueueDriver) CreateClaim(ctx context.Context, k queue.Key, o queue.ClaimOptions, now time.Time) (queue.Claim, error) {
	id := uuid.New()
	n := now.UnixNano()
	expires := n + int64(o.TTL)
	name := queueKey(k)
	if err := d.loaded(ctx, name, n); err != nil {
		return queue.Claim{}, err
	}
	if err := d.s.readable(ctx); err != nil {
		return queue.Claim{}, err
	}
	if err := d.s.ap.failed(); err != nil {
		return queue.Claim{}, err
	}
	d.qmu.Lock()
	m := d.mem[name]
	if m == nil { // no such queue
		d.qmu.Unlock()
		return queue.Claim{}, nil
	}
	d.reaped += m.claims.Reap(n)
	l := lazyMsgs{s: d.s, name: name}
	sc := seqCursor{p: d.pend[name], lazy: &l}
	// The messages are gathered first and materialized once their
	// number and size are known: a claim sized for its limit was the
	// largest allocation of the server (claims mostly get far fewer).
	buf := takenBufs.Get().(*[]takenMsg)
	got, bodies := (*buf)[:0], 0
	seqs, err := m.takeFree(&sc, n, o.Limit, func(seq uint64, r *msgRec) {
		r.claim, r.claimExp = id, expires
		if life := expires + int64(o.Grace); life > r.expires {
			r.expires = life
			m.extend[seq] = life
		}
		got = append(got, takenMsg{seq, *r})
		bodies += len(r.body)
	})
	if len(seqs) > 0 {
		m.claims.Hold(id, seqs, n, expires, int64(o.TTL), int64(o.Grace))
		m.unflushed[id] = false
	}
	var msgs []queue.Message
	if len(got) > 0 {
		// Bodies alias pages and journaled posts: copy them while qmu
		// and the read transaction still hold them.
		msgs = make([]queue.Message, 0, len(got))
		slab := msgSlab{body: make([]byte, 0, bodies), ids: claimIDs(got)}
		for i := range got {
			msgs = append(msgs, got[i].r.message(got[i].seq, n, &slab))
		}
	}
	clear(got)
	*buf = got[:0]
	takenBufs.Put(buf)
	l.close()
	d.qmu.Unlock()
	if err != nil {
		err = fmt.Errorf("queue %s: %w", k, err)
	}
	if err != nil || len(msgs) == 0 {
		return queue.Claim{}, err
	}
	return queue.Claim{
		ID: id.String(), TTL: o.TTL, Grace: o.Grace,
		Created: now.UTC(), Expires: time.Unix(0, expires).UTC(), Messages: msgs,
	}, nil
}

// takenMsg is a message a claim took, before it is materialized.
type takenMsg struct {
	seq uint64
	r   msgRec
}

// claimIDs formats the ids of got in one string.
func claimIDs(got []takenMsg) string {
	var small [16 * 16]byte // the usual claim is formatted on the stack
	b := small[:0]
	for i := range got {
		b = memq.AppendMessageID(b, got[i].seq)
	}
	return string(b)
}

var takenBufs = sync.Pool{New: func() any { b := make([]takenMsg, 0, 64); return &b }}

// activeClaim returns claim cid of m if it is active at now.
func activeClaim(m *memQueue, cid uuid.UUID, now int64) (memq.ClaimInfo, error) {
	if m != nil {
		if c, ok := m.claims.Active(cid, now); ok {
			return c, nil
		}
	}
	return memq.ClaimInfo{}, fmt.Errorf("%w: %s", queue.ErrClaimNotFound, cid)
}

// GetClaim implements queue.Driver.
func (d *QueueDriver) GetClaim(ctx context.Context, k queue.Key, id string, now time.Time) (queue.Claim, error) {
	cid, ok := memq.ParseClaimID(id)
	if !ok {
		return queue.Claim{}, fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	n := now.UnixNano()
	var out queue.Claim
	err := d.withMem(ctx, queueKey(k), n, func(_ *bbolt.Tx, b *bbolt.Bucket, m *memQueue) error {
		c, err := activeClaim(m, cid, n)
		if err != nil {
			return err
		}
		out = queue.Claim{ID: id, TTL: time.Duration(c.TTL), Grace: time.Duration(c.Grace),
			Created: time.Unix(0, c.Created).UTC(), Expires: time.Unix(0, c.Expires).UTC()}
		var slab msgSlab
		return forClaimed(b.Bucket(qbktMsgs), d.pend[queueKey(k)], c.Seqs, func(seq uint64, r *msgRec) error {
			m.overlay(seq, r, n)
			if r.expires > n {
				out.Messages = append(out.Messages, r.message(seq, n, &slab))
			}
			return nil
		})
	})
	return out, err
}

// forClaimed calls fn for each stored message among seqs (those a claim
// still holds), as mb and the journaled writes p have them.
func forClaimed(mb *bbolt.Bucket, p *pendQueue, seqs []uint64, fn func(seq uint64, r *msgRec) error) error {
	for _, seq := range seqs {
		v := lookup(mb, p, seq)
		if v == nil {
			continue
		}
		r, err := decodeMsg(v)
		if err != nil {
			return fmt.Errorf("%w: seq %d: %w", ErrCorrupt, seq, err)
		}
		if err := fn(seq, &r); err != nil {
			return err
		}
	}
	return nil
}

// RenewClaim implements queue.Driver. The renewed claim is written (and
// so made durable) before it is acknowledged.
func (d *QueueDriver) RenewClaim(ctx context.Context, k queue.Key, id string, ttl, grace time.Duration, now time.Time) error {
	n := now.UnixNano()
	return d.updateClaim(ctx, k, id, n, func(c memq.ClaimInfo) memq.ClaimInfo {
		c.Expires, c.TTL, c.Grace = n+int64(ttl), int64(ttl), int64(grace)
		return c
	}, false)
}

// ReleaseClaim implements queue.Driver.
func (d *QueueDriver) ReleaseClaim(ctx context.Context, k queue.Key, id string, now time.Time) error {
	err := d.updateClaim(ctx, k, id, now.UnixNano(), func(c memq.ClaimInfo) memq.ClaimInfo { return c }, true)
	if errors.Is(err, queue.ErrClaimNotFound) {
		return nil
	}
	return err
}

// updateClaim writes an active claim as edit returns it (or, with drop,
// clears its stamps and record) in one commit, then applies the same to
// memory once that commit is durable.
func (d *QueueDriver) updateClaim(ctx context.Context, k queue.Key, id string, n int64,
	edit func(memq.ClaimInfo) memq.ClaimInfo, drop bool) error {
	cid, ok := memq.ParseClaimID(id)
	if !ok {
		return fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	name := queueKey(k)
	if err := d.loaded(ctx, name, n); err != nil {
		return err
	}
	var (
		result error
		u      memq.ClaimInfo
	)
	err := d.write(ctx, 256, func(tx *bbolt.Tx, ar *arena) error {
		b := queueBucket(tx, []byte(name))
		d.qmu.Lock()
		defer d.qmu.Unlock()
		m := d.mem[name]
		if b == nil {
			m = nil
		}
		var c memq.ClaimInfo
		if c, result = activeClaim(m, cid, n); result != nil {
			return nil
		}
		u = edit(c)
		if drop {
			u.Expires = 0 // stamps with an expired claim mean "free"
		}
		return writeClaim(b, ar, m, &u, drop)
	})
	if err != nil || result != nil {
		return errors.Join(err, result)
	}
	d.qmu.Lock()
	defer d.qmu.Unlock()
	m := d.mem[name]
	if m == nil {
		return nil
	}
	delete(m.unflushed, cid) // written now, or gone
	if drop {
		m.claims.Release(cid, n)
		return nil
	}
	c, ok := m.claims.Renew(cid, n, u.TTL, u.Grace)
	if !ok {
		return nil
	}
	for _, seq := range c.Seqs {
		if c.Expires+c.Grace > m.extend[seq] {
			m.extend[seq] = c.Expires + c.Grace
		}
	}
	return nil
}

// writeClaim stamps the messages claim u still holds with u (its new
// state) and stores u's record, or deletes it with drop. Called in a
// write transaction under qmu; memory is left to the caller.
func writeClaim(b *bbolt.Bucket, ar *arena, m *memQueue, u *memq.ClaimInfo, drop bool) error {
	mb := b.Bucket(qbktMsgs)
	var keys, vals [][]byte
	// An op: the journaled queue entries are applied (waitQueue).
	err := forClaimed(mb, nil, u.Seqs, func(seq uint64, r *msgRec) error {
		if e, ok := m.extend[seq]; ok && e > r.expires {
			r.expires = e
		}
		r.claim, r.claimExp = u.ID, u.Expires
		if drop {
			r.claim, r.claimExp = uuid.Nil, 0
		} else {
			r.expires = max(r.expires, u.Expires+u.Grace)
		}
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
		return cb.Delete(ar.str(string(u.ID[:])))
	}
	cv := ar.alloc(claimHdrLen)
	rec := claimRec{created: u.Created, expires: u.Expires, ttl: u.TTL, grace: u.Grace}
	rec.encode(cv)
	return cb.Put(ar.str(string(u.ID[:])), cv)
}

// flushed names a claim written by flushClaims.
type flushed struct {
	m  *memQueue
	id uuid.UUID
}

// flushClaims writes the active claims not yet on file that the last
// sweep saw, so they survive a restart. It runs in a write transaction;
// they leave unflushed once the commit is durable (the caller).
func (d *QueueDriver) flushClaims(tx *bbolt.Tx, ar *arena, now int64) ([]flushed, error) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	var done []flushed
	for name, m := range d.mem {
		b := queueBucket(tx, []byte(name))
		if b == nil {
			continue
		}
		for id, seen := range m.unflushed {
			c, ok := m.claims.Active(id, now)
			if !seen || !ok {
				continue
			}
			if err := writeClaim(b, ar, m, &c, false); err != nil {
				return nil, err
			}
			done = append(done, flushed{m, id})
		}
	}
	return done, nil
}

// expireChunk bounds the entries one sweep transaction examines.
const expireChunk = 16384

// Expire implements queue.Driver. It runs as bounded chunks through the
// committer, like Prune, so posts interleave with a long sweep.
func (d *QueueDriver) Expire(ctx context.Context, now time.Time) (int, error) {
	n := now.UnixNano()
	reaped, err := d.flush(ctx, n)
	if err != nil {
		return reaped, err
	}
	e := &expirer{d: d, now: n}
	for !e.cur.done {
		if err := d.sweep(ctx, 64, e.chunk); err != nil {
			return reaped + e.cur.removed, err
		}
		e.cur = e.next
	}
	return reaped + e.cur.removed, nil
}

// flush reaps expired in-memory claims and writes the active ones not
// yet on file that the previous call already saw (short-lived claims,
// deleted within a sweep, are never written); it returns how many claims
// expired since the last call.
func (d *QueueDriver) flush(ctx context.Context, n int64) (int, error) {
	d.qmu.Lock()
	pending := false
	for _, m := range d.mem {
		d.reaped += m.claims.Reap(n)
		for id, seen := range m.unflushed {
			if _, ok := m.claims.Active(id, n); !ok {
				delete(m.unflushed, id) // deleted, released or expired: nothing to write
				continue
			}
			pending = pending || seen
			m.unflushed[id] = true
		}
	}
	reaped := d.reaped
	d.reaped = 0
	d.qmu.Unlock()
	if !pending {
		return reaped, nil
	}
	var done []flushed
	err := d.sweep(ctx, 4096, func(tx *bbolt.Tx, ar *arena) error {
		var err error
		done, err = d.flushClaims(tx, ar, n)
		return err
	})
	if err != nil {
		return reaped, err
	}
	d.qmu.Lock()
	for _, f := range done {
		delete(f.m.unflushed, f.id)
	}
	d.qmu.Unlock()
	return reaped, nil
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
		e.d.qmu.Lock()
		finished, err := e.sweepQueue(b, e.d.mem[name], &st, &budget)
		// Posts the B-tree does not have yet were not looked at: the
		// next sweep must not skip the queue past their expiry.
		st.minExp = min(st.minExp, e.d.pend[name].minExpiry())
		e.d.qmu.Unlock()
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
func (e *expirer) sweepQueue(b *bbolt.Bucket, m *memQueue, st *expireState, budget *int) (bool, error) {
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
		m.overlay(keySeq(key), &r, e.now)
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
