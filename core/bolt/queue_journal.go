package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/seqmap"
)

// Queue posts and deletes are journaled like stream appends: each is
// acknowledged once its record entry (record_queue.go) is in the journal,
// one write and one fdatasync shared by the group, and the applier writes
// it into the B-tree later. Until then the driver keeps what the journal
// has and the B-tree has not yet (pendQueue, per queue, under qmu), and
// every queue read looks there first, so a read after an acknowledged
// post or delete sees it without waiting for the applier:
//
//   - the committer notes a record's entries (QueueDriver.posted,
//     QueueDriver.deleted) once the record is durable and before the
//     applier can have it;
//   - the applier drops them (QueueDriver.applied) once the record is in
//     the B-tree, before anyone waiting for that learns it, so a queue op
//     in the committer (claims flush, expiry, renew, pop, queue changes:
//     they wait for journaled queue entries, waitQueue) sees a complete
//     B-tree and no pending entries;
//   - a reader holds qmu across its read transaction, so the applier
//     cannot drop entries it has not seen in the B-tree yet.
//
// Seqs are handed out in memory (QueueDriver.seqs), so a post needs no
// read of the B-tree: a queue's counter only grows while the process
// runs, even across a delete of the queue, so no two posts share a seq.
// The first post to a queue that does not exist yet creates it in the
// B-tree (an op), so queue existence is always the B-tree's.

// pendQueue is what the journal holds for one queue and the B-tree does
// not yet.
type pendQueue struct {
	posted  seqmap.Map[[]byte] // seq → value (aliases the journal record)
	deleted seqmap.Map[struct{}]
}

// pendRef names the entries of one journal record, so the applier can
// drop them once the record is applied.
type pendRef struct {
	rec    uint64
	name   string
	lo, hi uint64   // posted seqs
	dels   []uint64 // deleted seqs
}

func (d *QueueDriver) pendFor(name string) *pendQueue {
	p := d.pend[name]
	if p == nil {
		p = &pendQueue{}
		d.pend[name] = p
	}
	return p
}

// posted notes a durable post entry (on the committer): its messages are
// readable from entry (the copy in the journal record) and claimable from
// now on.
func (d *QueueDriver) posted(rec uint64, name string, entry []byte) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	p := d.pendFor(name)
	r := recordReader{b: entry}
	r.bytes(2)
	r.lenBytes()
	var lo, hi uint64
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		seq := r.uvarint()
		v := r.lenBytes()
		if r.err != nil {
			break
		}
		p.posted.Set(seq, v)
		if lo == 0 {
			lo = seq
		}
		hi = seq
	}
	if lo == 0 {
		return
	}
	d.refs = append(d.refs, pendRef{rec: rec, name: name, lo: lo, hi: hi})
	if m := d.mem[name]; m != nil {
		m.claims.AddFree(lo, hi)
	}
}

// deleted notes a durable delete entry (on the committer).
func (d *QueueDriver) deleted(rec uint64, name string, seqs []uint64) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	p := d.pendFor(name)
	for _, seq := range seqs {
		p.deleted.Set(seq, struct{}{})
	}
	d.refs = append(d.refs, pendRef{rec: rec, name: name, dels: seqs})
}

// applied drops the pending entries of the first upTo journal records,
// which the B-tree now has (on the applier).
func (d *QueueDriver) applied(upTo uint64) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	i := 0
	for ; i < len(d.refs) && d.refs[i].rec <= upTo; i++ {
		ref := &d.refs[i]
		p := d.pend[ref.name]
		if p == nil {
			continue
		}
		for seq := ref.lo; seq != 0 && seq <= ref.hi; seq++ {
			p.posted.Delete(seq)
		}
		for _, seq := range ref.dels {
			p.deleted.Delete(seq)
		}
		if p.posted.Len() == 0 && p.deleted.Len() == 0 {
			delete(d.pend, ref.name)
		}
	}
	clear(d.refs[:i])
	d.refs = d.refs[i:]
	if len(d.refs) == 0 {
		d.refs = nil // let the array go once drained
	}
}

// get returns seq's value as the journal has it, and whether the journal
// decides (posted, or deleted: nil).
func (p *pendQueue) get(seq uint64) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	if p.deleted.Has(seq) {
		return nil, true
	}
	return p.posted.Get(seq)
}

// minExpiry is the earliest expiry among the journaled posts.
func (p *pendQueue) minExpiry() int64 {
	m := int64(math.MaxInt64)
	if p == nil {
		return m
	}
	for _, v := range p.posted.All() {
		if r, err := decodeMsg(v); err == nil {
			m = min(m, r.expires)
		}
	}
	return m
}

// lookup returns seq's stored value: the journal's, else the B-tree's.
func lookup(mb *bbolt.Bucket, p *pendQueue, seq uint64) []byte {
	if v, ok := p.get(seq); ok {
		return v
	}
	key := seqKey(seq)
	return mb.Get(key[:])
}

// eachMsg calls fn with every stored message from seq from on, in seq
// order: the B-tree's and the journaled posts not yet in it, without the
// journaled deletes. fn returns false to stop.
func eachMsg(mb *bbolt.Bucket, p *pendQueue, from uint64, fn func(seq uint64, v []byte) (bool, error)) error {
	var extra []uint64
	if p != nil {
		for seq := range p.posted.All() {
			if seq >= from {
				extra = append(extra, seq)
			}
		}
		slices.Sort(extra)
	}
	c := mb.Cursor()
	key := seqKey(from)
	k, v := c.Seek(key[:])
	for {
		var seq uint64
		var val []byte
		switch {
		case len(extra) > 0 && (k == nil || extra[0] <= keySeq(k)):
			seq = extra[0]
			val, _ = p.posted.Get(seq)
			if k != nil && keySeq(k) == seq {
				k, v = c.Next() // applied meanwhile: the same value
			}
			extra = extra[1:]
		case k != nil:
			seq, val = keySeq(k), v
			k, v = c.Next()
		default:
			return nil
		}
		if p != nil {
			if p.deleted.Has(seq) {
				continue
			}
		}
		if more, err := fn(seq, val); !more || err != nil {
			return err
		}
	}
}

// reserve hands out n seqs of queue name if its claim state is loaded
// (the queue exists), else reports false.
func (d *QueueDriver) reserve(name string, n int) (uint64, bool) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	if d.mem[name] == nil {
		return 0, false
	}
	first := d.seqs[name] + 1
	d.seqs[name] += uint64(n)
	return first, true
}

// journalPost encodes msgs as a post entry with seqs from first on,
// makes it durable, and notes it (posted).
func (d *QueueDriver) journalPost(ctx context.Context, name string, first uint64, client uuid.UUID, msgs []queue.NewMessage, n int64) error {
	buf := entryBufs.Get().(*[]byte)
	entry := appendTaggedHeader((*buf)[:0], entryQueuePost, name, len(msgs))
	minExp := int64(1<<63 - 1)
	for i, m := range msgs {
		r := msgRec{created: n, expires: n + int64(m.TTL), ttl: int64(m.TTL), client: client, body: m.Body}
		var v []byte
		entry, v = appendPostedMessage(entry, first+uint64(i), msgHdrLen+len(m.Body))
		r.encode(v)
		minExp = min(minExp, r.expires)
	}
	d.noteExpiry(name, minExp)
	err := d.journal(ctx, entry, func(rec uint64, inRecord []byte) { d.posted(rec, name, inRecord) })
	if cap(entry) <= entryBufKeep {
		*buf = entry[:0]
		entryBufs.Put(buf)
	}
	return err
}

// entryBufs recycles post entries: the journal record holds a copy.
var entryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const entryBufKeep = 64 << 10

// journalDelete makes a delete entry of seqs durable and notes it.
func (d *QueueDriver) journalDelete(ctx context.Context, name string, seqs []uint64) error {
	entry := appendTaggedHeader(make([]byte, 0, 2+2*10+len(name)+10*len(seqs)), entryQueueDelete, name, len(seqs))
	for _, seq := range seqs {
		entry = binary.AppendUvarint(entry, seq)
	}
	return d.journal(ctx, entry, func(rec uint64, _ []byte) { d.deleted(rec, name, seqs) })
}

// journal makes entry durable; a closed store is reported as
// queue.ErrClosed, as write does.
func (d *QueueDriver) journal(ctx context.Context, entry []byte, journaled func(rec uint64, inRecord []byte)) error {
	err := d.s.journalEntry(ctx, entry, journaled)
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", queue.ErrClosed, err)
	}
	return err
}
