package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
)

var _ queue.Driver = (*QueueDriver)(nil)

// Queue layout: bucket "queues" holds one bucket per queue, named
// tenant + 0x00 + queue (tenants hold no control bytes), so a tenant's
// queues are one contiguous, name-ordered range. Inside: key "meta" (JSON
// metadata), key "seq" (last message seq), bucket "msgs" (big-endian seq
// → message value) and bucket "claims" (claim UUID → claim value).
var (
	bktQueues  = []byte("queues")
	qkMeta     = []byte("meta")
	qkSeq      = []byte("seq")
	qbktMsgs   = []byte("msgs")
	qbktClaims = []byte("claims")
)

// QueueDriver is the bbolt queue.Driver. Every write goes through the
// store's group committer, so a post or delete is acknowledged only once
// it is durable, and concurrent ones share an fsync; posts and deletes
// are journaled (queue_journal.go), claims live in memory (queue_mem.go).
type QueueDriver struct {
	s *Store

	// nextExpiry remembers, per queue bucket, the earliest instant
	// anything in it can expire, so sweeps skip quiet queues. Missing
	// means unknown (scan it).
	mu         sync.Mutex
	nextExpiry map[string]int64

	// qmu guards the in-memory claim state of every queue (see
	// queue_mem.go); reaped counts claims that expired in memory since
	// the last Expire.
	qmu    sync.Mutex
	mem    map[string]*memQueue
	reaped int
	// pend and refs: journaled posts and deletes not yet in the B-tree
	// (queue_journal.go); seqs: the last seq handed out per queue.
	pend map[string]*pendQueue
	refs []pendRef
	seqs map[string]uint64
}

// Queues returns the store's queue driver, creating its bucket. Every
// call returns the same driver: the claims and the journaled writes not
// yet applied are its memory, one per store.
func (s *Store) Queues(ctx context.Context) (*QueueDriver, error) {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	if s.queues != nil {
		return s.queues, nil
	}
	err := s.writeDirect(ctx, 16, func(tx *bbolt.Tx, _ *arena) error {
		_, err := tx.CreateBucketIfNotExists(bktQueues)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: queues bucket: %w", err)
	}
	d := &QueueDriver{s: s, nextExpiry: map[string]int64{}, mem: map[string]*memQueue{},
		pend: map[string]*pendQueue{}, seqs: map[string]uint64{}}
	hook := d.applied
	s.queueApplied.Store(&hook)
	s.queues = d
	return d, nil
}

// queueKey is queueName as a string, in one allocation.
func queueKey(k queue.Key) string { return k.Tenant + "\x00" + k.Queue }

func queueName(k queue.Key) []byte {
	b := make([]byte, 0, len(k.Tenant)+1+len(k.Queue))
	b = append(b, k.Tenant...)
	b = append(b, 0)
	return append(b, k.Queue...)
}

func queueBucket(tx *bbolt.Tx, name []byte) *bbolt.Bucket {
	root := tx.Bucket(bktQueues)
	if root == nil {
		return nil
	}
	return root.Bucket(name)
}

// ensureQueue returns the queue's bucket, creating it with meta.
func ensureQueue(tx *bbolt.Tx, name []byte, meta []byte) (b *bbolt.Bucket, created bool, err error) {
	root := tx.Bucket(bktQueues)
	if b = root.Bucket(name); b != nil {
		return b, false, nil
	}
	if b, err = root.CreateBucket(name); err != nil {
		return nil, false, fmt.Errorf("bolt: create queue: %w", err)
	}
	for _, sub := range [][]byte{qbktMsgs, qbktClaims} {
		if _, err := b.CreateBucket(sub); err != nil {
			return nil, false, fmt.Errorf("bolt: create queue: %w", err)
		}
	}
	if err := b.Put(qkMeta, meta); err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// CreateQueue implements queue.Driver.
func (d *QueueDriver) CreateQueue(ctx context.Context, k queue.Key, meta json.RawMessage, _ time.Time) (bool, error) {
	var created bool
	err := d.write(ctx, 64+len(meta), func(tx *bbolt.Tx, ar *arena) error {
		var err error
		_, created, err = ensureQueue(tx, ar.str(queueKey(k)), ar.str(string(meta)))
		return err
	})
	return created, err
}

// QueueMetadata implements queue.Driver.
func (d *QueueDriver) QueueMetadata(ctx context.Context, k queue.Key) (json.RawMessage, error) {
	var meta json.RawMessage
	err := d.s.viewDirect(ctx, func(tx *bbolt.Tx) error {
		b := queueBucket(tx, queueName(k))
		if b == nil {
			return fmt.Errorf("%w: %s", queue.ErrQueueNotFound, k.Queue)
		}
		meta = bytes.Clone(b.Get(qkMeta))
		return nil
	})
	return meta, err
}

// SetQueueMetadata implements queue.Driver.
func (d *QueueDriver) SetQueueMetadata(ctx context.Context, k queue.Key, meta json.RawMessage) error {
	var result error
	err := d.write(ctx, 64+len(meta), func(tx *bbolt.Tx, ar *arena) error {
		result = nil
		b := queueBucket(tx, queueName(k))
		if b == nil {
			result = fmt.Errorf("%w: %s", queue.ErrQueueNotFound, k.Queue)
			return nil
		}
		return b.Put(qkMeta, ar.str(string(meta)))
	})
	return errors.Join(err, result)
}

// ListQueues implements queue.Driver.
func (d *QueueDriver) ListQueues(ctx context.Context, tenant, marker string, limit int) ([]queue.QueueInfo, error) {
	var out []queue.QueueInfo
	err := d.s.viewDirect(ctx, func(tx *bbolt.Tx) error {
		root := tx.Bucket(bktQueues)
		prefix := append([]byte(tenant), 0)
		start := append(bytes.Clone(prefix), marker...)
		c := root.Cursor()
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			name := string(k[len(prefix):])
			if name == marker {
				continue
			}
			meta := []byte("{}")
			if b := root.Bucket(k); b != nil {
				meta = bytes.Clone(b.Get(qkMeta))
			}
			out = append(out, queue.QueueInfo{Name: name, Metadata: meta})
		}
		return nil
	})
	return out, err
}

// DeleteQueue implements queue.Driver.
func (d *QueueDriver) DeleteQueue(ctx context.Context, k queue.Key) error {
	name := queueName(k)
	err := d.write(ctx, 64, func(tx *bbolt.Tx, ar *arena) error {
		err := tx.Bucket(bktQueues).DeleteBucket(ar.str(string(name)))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	d.mu.Lock()
	delete(d.nextExpiry, string(name))
	d.mu.Unlock()
	d.qmu.Lock()
	delete(d.mem, string(name))
	d.qmu.Unlock()
	return err
}

// QueueStats implements queue.Driver.
func (d *QueueDriver) QueueStats(ctx context.Context, k queue.Key, now time.Time) (queue.Stats, error) {
	var st queue.Stats
	n := now.UnixNano()
	err := d.withMem(ctx, queueKey(k), n, func(_ *bbolt.Tx, b *bbolt.Bucket, m *memQueue) error {
		if b == nil {
			return nil
		}
		return eachMsg(b.Bucket(qbktMsgs), d.pend[queueKey(k)], 1, func(seq uint64, v []byte) (bool, error) {
			r, err := decodeMsg(v)
			if err != nil {
				return false, fmt.Errorf("%w: queue %s: %w", ErrCorrupt, k, err)
			}
			m.overlay(seq, &r, n)
			if r.expires <= n {
				return true, nil
			}
			st.Total++
			if r.claimedAt(n) {
				st.Claimed++
			} else {
				st.Free++
			}
			ms := &queue.MessageStat{ID: memq.MessageID(seq), Created: time.Unix(0, r.created).UTC()}
			if st.Oldest == nil {
				st.Oldest = ms
			}
			st.Newest = ms
			return true, nil
		})
	})
	return st, err
}

// noteExpiry lowers the queue's earliest possible expiry to at.
func (d *QueueDriver) noteExpiry(name string, at int64) {
	d.mu.Lock()
	if cur, ok := d.nextExpiry[name]; ok && at < cur {
		d.nextExpiry[name] = at
	}
	d.mu.Unlock()
}

func putU64(ar *arena, v uint64) []byte {
	b := ar.alloc(8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// write runs op through the store's group committer, once every
// journaled queue entry is in the B-tree; a closed store is reported as
// queue.ErrClosed so the queue layers need not know bolt.
func (d *QueueDriver) write(ctx context.Context, size int, op func(*bbolt.Tx, *arena) error) error {
	err := d.s.writeQueue(ctx, size, op)
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", queue.ErrClosed, err)
	}
	return err
}

// sweep is write for the expiry sweep's ops (claim flushes, removing
// what expired), which need not wait for journaled queue entries: the
// committer would stall every post and delete behind the applier once a
// sweep. What the B-tree does not have yet is left alone: a message the
// sweep does not see is removed by a later sweep (reads skip expired
// messages anyway), and a claim stamp that misses a message not yet
// applied only loses that claim on a crash, which the claim rules allow
// (queue_mem.go). A claim lives two sweeps before its flush, far longer
// than the applier holds a record.
func (d *QueueDriver) sweep(ctx context.Context, size int, op func(*bbolt.Tx, *arena) error) error {
	err := d.s.writeDirect(ctx, size, op)
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", queue.ErrClosed, err)
	}
	return err
}
