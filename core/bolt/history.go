package bolt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sidestream/sidestream/core/event"
)

// ReadAfter returns up to limit events of stream with seq > after,
// ascending. limit is capped at MaxReadLimit; limit <= 0 returns none.
func (s *Store) ReadAfter(ctx context.Context, stream string, after uint64, limit int) ([]*event.Event, error) {
	limit = min(limit, MaxReadLimit)
	if limit <= 0 || after == math.MaxUint64 {
		return nil, s.readable(ctx)
	}
	var out []*event.Event
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := historyOf(tx, stream)
		if b == nil {
			return nil
		}
		raw := make([]rawEvent, 0, min(limit, 256))
		c := b.Cursor()
		k0 := seqKey(after + 1)
		for k, v := c.Seek(k0[:]); k != nil && len(raw) < limit; k, v = c.Next() {
			raw = append(raw, rawEvent{seq: keySeq(k), v: v})
		}
		var err error
		out, err = materialize(stream, raw, false)
		return err
	})
	return out, err
}

// ReadBefore returns the newest up to limit events with seq < before,
// ascending; before == 0 reads from the newest. limit is capped at
// MaxReadLimit; limit <= 0 returns none.
func (s *Store) ReadBefore(ctx context.Context, stream string, before uint64, limit int) ([]*event.Event, error) {
	limit = min(limit, MaxReadLimit)
	if limit <= 0 {
		return nil, s.readable(ctx)
	}
	var out []*event.Event
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := historyOf(tx, stream)
		if b == nil {
			return nil
		}
		raw := make([]rawEvent, 0, min(limit, 256))
		c := b.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			bk := seqKey(before)
			if k, _ = c.Seek(bk[:]); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(raw) < limit; k, v = c.Prev() {
			raw = append(raw, rawEvent{seq: keySeq(k), v: v})
		}
		var err error
		out, err = materialize(stream, raw, true)
		return err
	})
	return out, err
}

type rawEvent struct {
	seq uint64
	v   []byte // aliases the mmap: valid only inside the transaction
}

// materialize copies raw values out of the transaction with a handful of
// allocations: one array of events, one of pointers, one slab for all
// data, and one string per distinct type.
func materialize(stream string, raw []rawEvent, reverse bool) ([]*event.Event, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	total := 0
	for _, r := range raw {
		total += len(r.v)
	}
	evs := make([]event.Event, len(raw))
	out := make([]*event.Event, len(raw))
	slab := make([]byte, 0, total)
	var lastType string
	for i := range raw {
		r := raw[i]
		if reverse {
			r = raw[len(raw)-1-i]
		}
		typ, nano, data, err := decodeValue(r.v)
		if err != nil {
			return nil, fmt.Errorf("%w: stream %q seq %d: %w", ErrCorrupt, stream, r.seq, err)
		}
		if string(typ) != lastType {
			lastType = string(typ)
		}
		e := &evs[i]
		e.Stream, e.Seq, e.Type, e.Time = stream, r.seq, lastType, nanoToTime(nano)
		if len(data) > 0 {
			start := len(slab)
			slab = append(slab, data...)
			e.Data = slab[start:len(slab):len(slab)]
		}
		out[i] = e
	}
	return out, nil
}

// Head returns the highest seq the stream has stored or handed out
// (0 for a stream never written).
func (s *Store) Head(ctx context.Context, stream string) (uint64, error) {
	var head uint64
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		head = keySeq(tx.Bucket(bktHeads).Get([]byte(stream)))
		return nil
	})
	return head, err
}

// DeleteStream removes the stream's history and head, through the
// committer so it is ordered after every append queued before it.
func (s *Store) DeleteStream(ctx context.Context, stream string) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalid)
	}
	return s.write(ctx, 64, func(tx *bbolt.Tx, ar *arena) error {
		name := ar.str(stream)
		err := tx.Bucket(bktHistory).DeleteBucket(name)
		if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("bolt: delete history of %q: %w", stream, err)
		}
		return tx.Bucket(bktHeads).Delete(name)
	})
}

// Prune chunk bounds: one chunk is one write in a group, so a large prune
// never holds the write lock for long and appends interleave with it.
const (
	pruneMaxDeletes = 2048
	pruneMaxScanned = 16384
)

// Prune deletes all but the newest keep events and every event whose
// time is before olderThan. It runs as a sequence of bounded chunks that
// go through the committer (sharing transactions and fsyncs with
// appends) instead of a separate db.Update that would contend with the
// committer for bbolt's single writer lock. The head is never touched:
// seqs are not reused after pruning. Age pruning checks every event, not
// only the oldest run, since event times need not follow seqs.
func (s *Store) Prune(ctx context.Context, stream string, keep int, olderThan time.Time) (int, error) {
	if keep <= 0 && olderThan.IsZero() {
		return 0, s.readable(ctx)
	}
	p := &pruner{stream: stream, keep: keep, byAge: !olderThan.IsZero(), older: timeToNano(olderThan)}
	for !p.cur.done {
		if err := s.write(ctx, 64, p.chunk); err != nil {
			return p.cur.deleted, err
		}
		// Only a committed chunk advances the prune: if its group failed
		// and it was replayed, the replay started from p.cur again.
		p.cur = p.next
	}
	return p.cur.deleted, nil
}

type pruner struct {
	stream    string
	keep      int
	byAge     bool
	older     int64
	cur, next pruneState
}

type pruneState struct {
	started bool
	cutoff  uint64 // events with seq < cutoff are beyond keep
	from    uint64 // next seq to examine
	deleted int
	done    bool
}

// chunk deletes one bounded chunk, reading p.cur and writing p.next, so
// running it twice (a replay after a failed group) is harmless.
func (p *pruner) chunk(tx *bbolt.Tx, _ *arena) error {
	st := p.cur
	b := historyOf(tx, p.stream)
	if b == nil {
		st.done = true
		p.next = st
		return nil
	}
	if !st.started {
		st.cutoff, st.started = keepCutoff(b.Cursor(), p.keep), true
	}
	var dels []uint64
	st.done = true
	scanned := 0
	c := b.Cursor()
	k0 := seqKey(st.from)
	for k, v := c.Seek(k0[:]); k != nil; k, v = c.Next() {
		seq := keySeq(k)
		if seq >= st.cutoff && !p.byAge {
			break
		}
		if scanned >= pruneMaxScanned || len(dels) >= pruneMaxDeletes {
			st.from, st.done = seq, false
			break
		}
		scanned++
		old := seq < st.cutoff
		if !old && p.byAge {
			nano, err := valueNano(v)
			if err != nil {
				return fmt.Errorf("%w: stream %q seq %d: %w", ErrCorrupt, p.stream, seq, err)
			}
			old = nano < p.older
		}
		if old {
			dels = append(dels, seq)
		}
	}
	for _, seq := range dels {
		k := seqKey(seq)
		if err := b.Delete(k[:]); err != nil {
			return fmt.Errorf("bolt: prune %q seq %d: %w", p.stream, seq, err)
		}
	}
	st.deleted += len(dels)
	p.next = st
	return nil
}

// keepCutoff returns the seq of the keep-th newest event (0 when the
// stream holds no more than keep, or keep <= 0).
func keepCutoff(c *bbolt.Cursor, keep int) uint64 {
	if keep <= 0 {
		return 0
	}
	k, _ := c.Last()
	for i := 1; i < keep && k != nil; i++ {
		k, _ = c.Prev()
	}
	if k == nil {
		return 0
	}
	return keySeq(k)
}

func historyOf(tx *bbolt.Tx, stream string) *bbolt.Bucket {
	if stream == "" {
		return nil
	}
	return tx.Bucket(bktHistory).Bucket([]byte(stream))
}

// view runs fn in a read transaction, refusing after Close. It first
// waits until every append acknowledged before the call is out of the
// journal and in the B-tree: use it to read what appends write (history,
// heads, checkpoints).
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	if err := s.ap.wait(ctx); err != nil {
		return err
	}
	return dbErr(s.db.View(fn))
}

// viewDirect is view for buckets appends never write (specs, queues):
// their writes go straight into the B-tree, so there is nothing to wait
// for, and waiting would cut the applier's linger short for nothing.
func (s *Store) viewDirect(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	if err := s.ap.failed(); err != nil {
		return err
	}
	return dbErr(s.db.View(fn))
}

func (s *Store) readable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return ErrClosed
	}
	return nil
}
