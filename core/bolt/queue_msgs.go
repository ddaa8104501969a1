package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
)

// listScanLimit bounds the messages one list looks at beyond its limit
// (claimed or echoed ones it skips), so one call never walks a huge queue.
const listScanLimit = 4096

// PostMessages implements queue.Driver. A post to an existing queue is
// journaled (queue_journal.go); the first post creates the queue in the
// B-tree.
func (d *QueueDriver) PostMessages(ctx context.Context, k queue.Key, clientID string, msgs []queue.NewMessage, now time.Time) ([]string, error) {
	client, err := uuid.Parse(clientID)
	if err != nil {
		return nil, fmt.Errorf("%w: client id: %w", ErrInvalid, err)
	}
	name := queueKey(k)
	n := now.UnixNano()
	if err := d.loaded(ctx, name, n); err != nil {
		return nil, err
	}
	var first uint64
	if len(msgs) == 0 {
		return []string{}, nil
	}
	if f, ok := d.reserve(name, len(msgs)); ok {
		first = f
		err = d.journalPost(ctx, name, first, client, msgs, n)
	} else {
		first, err = d.postTree(ctx, k, []byte(name), client, msgs, n)
	}
	if err != nil {
		return nil, err
	}
	return memq.MessageIDs(first, len(msgs)), nil
}

// postTree posts to a queue that does not exist yet, creating it, in one
// B-tree transaction.
func (d *QueueDriver) postTree(ctx context.Context, k queue.Key, name []byte, client uuid.UUID, msgs []queue.NewMessage, n int64) (uint64, error) {
	size := 64 + len(name)
	for _, m := range msgs {
		size += 8 + msgHdrLen + len(m.Body)
	}
	var first uint64
	err := d.write(ctx, size, func(tx *bbolt.Tx, ar *arena) error {
		b, _, err := ensureQueue(tx, ar.str(string(name)), []byte("{}"))
		if err != nil {
			return err
		}
		d.qmu.Lock()
		first = max(keySeq(b.Get(qkSeq)), d.seqs[string(name)]) + 1
		d.seqs[string(name)] = first + uint64(len(msgs)) - 1
		d.qmu.Unlock()
		mb := b.Bucket(qbktMsgs)
		mb.FillPercent = 0.9 // seqs only grow
		minExp := int64(1<<63 - 1)
		for i, m := range msgs {
			r := msgRec{created: n, expires: n + int64(m.TTL), ttl: int64(m.TTL), client: client, body: m.Body}
			v := ar.alloc(msgHdrLen + len(m.Body))
			r.encode(v)
			if err := mb.Put(putU64(ar, first+uint64(i)), v); err != nil {
				return fmt.Errorf("bolt: post to %s: %w", k, err)
			}
			minExp = min(minExp, r.expires)
		}
		d.noteExpiry(string(name), minExp)
		return b.Put(qkSeq, putU64(ar, first+uint64(len(msgs))-1))
	})
	if err != nil {
		return 0, err
	}
	// Claimable only now that the post is durable.
	d.qmu.Lock()
	if m := d.mem[string(name)]; m != nil {
		m.claims.AddFree(first, first+uint64(len(msgs))-1)
	}
	d.qmu.Unlock()
	return first, nil
}

// ListMessages implements queue.Driver.
func (d *QueueDriver) ListMessages(ctx context.Context, k queue.Key, o queue.ListOptions, now time.Time) (queue.Page, error) {
	var page queue.Page
	var client uuid.UUID
	if !o.Echo {
		client, _ = uuid.Parse(o.ClientID)
	}
	n := now.UnixNano()
	name := queueKey(k)
	err := d.withMem(ctx, name, n, func(_ *bbolt.Tx, b *bbolt.Bucket, m *memQueue) error {
		if b == nil {
			return nil
		}
		var slab msgSlab
		scanned := 0
		return eachMsg(b.Bucket(qbktMsgs), d.pend[name], memq.ParseMessageID(o.Marker)+1, func(seq uint64, v []byte) (bool, error) {
			if len(page.Messages) >= o.Limit {
				return false, nil
			}
			if scanned++; scanned > o.Limit+listScanLimit {
				return false, nil
			}
			page.Marker = memq.MessageID(seq)
			r, err := decodeMsg(v)
			if err != nil {
				return false, fmt.Errorf("%w: queue %s: %w", ErrCorrupt, k, err)
			}
			m.overlay(seq, &r, n)
			if r.expires <= n || (!o.IncludeClaimed && r.claimedAt(n)) || (client != uuid.Nil && r.client == client) {
				return true, nil
			}
			page.Messages = append(page.Messages, r.message(seq, n, &slab))
			return true, nil
		})
	})
	return page, err
}

// GetMessages implements queue.Driver.
func (d *QueueDriver) GetMessages(ctx context.Context, k queue.Key, ids []string, now time.Time) ([]queue.Message, error) {
	var out []queue.Message
	n := now.UnixNano()
	err := d.withMem(ctx, queueKey(k), n, func(_ *bbolt.Tx, b *bbolt.Bucket, m *memQueue) error {
		if b == nil {
			return nil
		}
		var slab msgSlab
		mb := b.Bucket(qbktMsgs)
		p := d.pend[queueKey(k)]
		for _, id := range ids {
			seq := memq.ParseMessageID(id)
			if seq == 0 {
				continue
			}
			v := lookup(mb, p, seq)
			if v == nil {
				continue
			}
			r, err := decodeMsg(v)
			if err != nil {
				return fmt.Errorf("%w: queue %s: %w", ErrCorrupt, k, err)
			}
			m.overlay(seq, &r, n)
			if r.expires > n {
				out = append(out, r.message(seq, n, &slab))
			}
		}
		return nil
	})
	return out, err
}

// DeleteMessages implements queue.Driver. The delete is checked against
// the in-memory claims and what is stored, under qmu; its seqs are then
// pinned (no claim takes them) while the delete is journaled.
func (d *QueueDriver) DeleteMessages(ctx context.Context, k queue.Key, ids, claimIDs []string, now time.Time) error {
	claims := make([]uuid.UUID, 0, len(claimIDs))
	for _, c := range claimIDs {
		u, ok := memq.ParseClaimID(c)
		if !ok {
			return fmt.Errorf("%w: %q is not a claim id", queue.ErrNotClaimedBy, c)
		}
		claims = append(claims, u)
	}
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		if seq := memq.ParseMessageID(id); seq != 0 {
			seqs = append(seqs, seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	name := queueKey(k)
	n := now.UnixNano()
	if d.pinHeld(name, seqs, claims, n) {
		return d.finishDelete(ctx, name, seqs)
	}
	var result error
	pinned := false
	err := d.withMem(ctx, name, n, func(_ *bbolt.Tx, b *bbolt.Bucket, m *memQueue) error {
		if b == nil {
			return nil
		}
		sc := newSeqCursor(b.Bucket(qbktMsgs), d.pend[name])
		// Check everything first: a rejected delete deletes nothing.
		for _, seq := range seqs {
			holder, held := m.holder(seq, n)
			if held && heldByOneOf(holder, claims) {
				// Whatever the stored record says (absent, expired or
				// live), a delete by the claim holding it passes: skip
				// the lookup.
				continue
			}
			v, ok := sc.get(seq)
			if !ok {
				continue
			}
			r, err := decodeMsg(v)
			if err != nil {
				return fmt.Errorf("%w: queue %s: %w", ErrCorrupt, k, err)
			}
			m.overlay(seq, &r, n)
			if r.expires <= n {
				continue
			}
			if result = checkDelete(holder, held, seq, claims); result != nil {
				return nil
			}
		}
		// No claim takes them until the outcome is known.
		for _, seq := range seqs {
			m.pinned.Set(seq, struct{}{})
		}
		pinned = true
		return nil
	})
	if err != nil || result != nil || !pinned {
		return errors.Join(err, result)
	}
	return d.finishDelete(ctx, name, seqs)
}

// pinHeld pins seqs for a delete if the given claims hold every one of
// them, which is all a delete by its claims needs to know: the common
// case then takes no read transaction.
func (d *QueueDriver) pinHeld(name string, seqs []uint64, claims []uuid.UUID, n int64) bool {
	if len(claims) == 0 {
		return false
	}
	d.qmu.Lock()
	defer d.qmu.Unlock()
	m := d.mem[name]
	if m == nil {
		return false
	}
	for _, seq := range seqs {
		if holder, held := m.holder(seq, n); !held || !heldByOneOf(holder, claims) {
			return false
		}
	}
	for _, seq := range seqs {
		m.pinned.Set(seq, struct{}{})
	}
	return true
}

// finishDelete journals the delete of the pinned seqs and unpins them.
func (d *QueueDriver) finishDelete(ctx context.Context, name string, seqs []uint64) error {
	err := d.journalDelete(ctx, name, seqs)
	d.qmu.Lock()
	if m := d.mem[name]; m != nil {
		m.unpin(seqs, err == nil)
	}
	d.qmu.Unlock()
	return err
}

// heldByOneOf reports whether holder is one of claims.
func heldByOneOf(holder uuid.UUID, claims []uuid.UUID) bool {
	return slices.Contains(claims, holder)
}

func checkDelete(holder uuid.UUID, held bool, seq uint64, claims []uuid.UUID) error {
	if len(claims) == 0 {
		if held {
			return fmt.Errorf("%w (message %s)", queue.ErrClaimed, memq.MessageID(seq))
		}
		return nil
	}
	if held && heldByOneOf(holder, claims) {
		return nil
	}
	return fmt.Errorf("%w (message %s)", queue.ErrNotClaimedBy, memq.MessageID(seq))
}

// PopMessages implements queue.Driver.
func (d *QueueDriver) PopMessages(ctx context.Context, k queue.Key, limit int, now time.Time) ([]queue.Message, error) {
	name := queueKey(k)
	n := now.UnixNano()
	if err := d.loaded(ctx, name, n); err != nil {
		return nil, err
	}
	var (
		out   []queue.Message
		taken []uint64
	)
	err := d.write(ctx, 64+16*limit, func(tx *bbolt.Tx, _ *arena) error {
		d.qmu.Lock()
		defer d.qmu.Unlock()
		m := d.mem[name]
		if m != nil && len(taken) > 0 { // a replay: the first run did not commit
			m.unpin(taken, false)
		}
		out, taken = out[:0], taken[:0]
		b := queueBucket(tx, []byte(name))
		if b == nil || m == nil {
			return nil
		}
		d.reaped += m.claims.Reap(n)
		var slab msgSlab
		mb := b.Bucket(qbktMsgs)
		sc := newSeqCursor(mb, nil)
		_, err := m.takeFree(&sc, n, limit, func(seq uint64, r *msgRec) {
			out = append(out, r.message(seq, n, &slab))
			taken = append(taken, seq)
			m.pinned.Set(seq, struct{}{})
		})
		if err != nil {
			return fmt.Errorf("queue %s: %w", k, err)
		}
		sc = newSeqCursor(mb, nil)
		for _, seq := range taken {
			if err := sc.del(seq); err != nil {
				return fmt.Errorf("bolt: pop from %s: %w", k, err)
			}
		}
		return nil
	})
	if len(taken) > 0 {
		d.qmu.Lock()
		if m := d.mem[name]; m != nil {
			m.unpin(taken, err == nil)
		}
		d.qmu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// takeFree takes up to limit live, unclaimed messages from the free
// candidates (as sc reads them), oldest first, calls fn for each and returns their seqs; it
// drops candidates that were deleted or expired. fn must not modify mb
// nor keep r (reused for the next message); r.body aliases the page.
func (m *memQueue) takeFree(sc *seqCursor, now int64, limit int, fn func(seq uint64, r *msgRec)) ([]uint64, error) {
	// One record for the whole take: passed to fn (an indirect call), a
	// record per message escaped, an allocation per claimed message.
	r := new(msgRec)
	return m.claims.Take(limit, func(seq uint64) (bool, error) {
		if m.pinned.Has(seq) {
			return false, nil
		}
		v, ok := sc.get(seq)
		if sc.err != nil {
			return false, sc.err
		}
		if !ok {
			delete(m.extend, seq)
			return false, nil
		}
		var err error
		if *r, err = decodeMsg(v); err != nil {
			return false, fmt.Errorf("%w: seq %d: %w", ErrCorrupt, seq, err)
		}
		m.overlay(seq, r, now)
		if r.expires <= now {
			delete(m.extend, seq)
			return false, nil // the sweep deletes it
		}
		fn(seq, r)
		return true, nil
	})
}

// seqCursor looks messages up by seq through one cursor. Bucket.Get and
// Bucket.Delete each open a cursor whose search stack is allocated anew
// (the largest source of allocations in a claim); one cursor reuses it,
// and the seq right after the one it is on (claims and deletes go in
// runs) is one Next away instead of a search from the root.
type seqCursor struct {
	c    *bbolt.Cursor
	p    *pendQueue // journaled writes not yet in b (nil: none)
	last uint64     // the seq the cursor is on; 0: unknown, seek
	// lazy, if set, opens the bucket on the first lookup p cannot
	// answer (c is nil until then); a failure to open sticks in err.
	lazy *lazyMsgs
	err  error
}

func newSeqCursor(b *bbolt.Bucket, p *pendQueue) seqCursor { return seqCursor{c: b.Cursor(), p: p} }

// get returns seq's stored value, the journal's first. fn callers must
// not modify the bucket between gets (the cursor would be stale).
func (s *seqCursor) get(seq uint64) ([]byte, bool) {
	if v, ok := s.p.get(seq); ok {
		return v, v != nil
	}
	if s.c == nil {
		mb, err := s.lazy.bucket()
		if mb == nil {
			s.err = err
			return nil, false
		}
		s.c = mb.Cursor()
	}
	key := seqKey(seq)
	var k, v []byte
	if s.last != 0 && seq == s.last+1 {
		k, v = s.c.Next()
	} else {
		k, v = s.c.Seek(key[:])
	}
	if k == nil {
		s.last = 0
		return nil, false
	}
	s.last = keySeq(k)
	return v, s.last == seq
}

// del deletes seq if it is stored.
func (s *seqCursor) del(seq uint64) error {
	s.last = 0 // seek after a delete: the cursor's page changed under it
	key := seqKey(seq)
	k, _ := s.c.Seek(key[:])
	if k == nil || keySeq(k) != seq {
		return nil
	}
	return s.c.Delete()
}

// lazyMsgs is a queue's messages bucket in a read transaction begun only
// when a read needs the B-tree: a claim of freshly posted messages finds
// them all among the journaled posts and needs none. The caller holds
// qmu from before the transaction begins until after it ends (see
// queue_journal.go).
type lazyMsgs struct {
	s    *Store
	name string
	tx   *bbolt.Tx
	mb   *bbolt.Bucket
	err  error
}

// bucket returns the messages bucket (nil if the queue is gone).
func (l *lazyMsgs) bucket() (*bbolt.Bucket, error) {
	if l.tx == nil && l.err == nil {
		tx, err := l.s.db.Begin(false)
		if err != nil {
			l.err = dbErr(err)
			return nil, l.err
		}
		l.tx = tx
		if b := queueBucket(tx, []byte(l.name)); b != nil {
			l.mb = b.Bucket(qbktMsgs)
		}
	}
	return l.mb, l.err
}

func (l *lazyMsgs) close() {
	if l.tx != nil {
		_ = l.tx.Rollback()
	}
}
