package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/stream"
)

// A record is a group of writes (stream appends, and queue posts and
// deletes) in the form both the journal and the B-tree apply use, so the
// path that replays a journal after a crash is the same one every write
// takes in normal operation:
//
//	uvarint number of entries, then per entry an append or a tagged entry
//	append:
//	  uvarint len (>= 1), stream name
//	  uvarint head
//	  uvarint number of events, then per event:
//	    uvarint seq, uvarint len, value (codec.go format)
//	  byte 1 with a checkpoint (uvarint len, emitter, uvarint len, value), else 0
//	tagged entry (record_queue.go):
//	  byte 0 (a stream name is never empty, so records written before
//	  tagged entries existed read the same), byte kind, kind's fields
var errBadRecord = errors.New("malformed journal record")

// appendRecord appends the encoding of a to dst.
func appendRecord(dst []byte, a *stream.Append) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(a.Stream)))
	dst = append(dst, a.Stream...)
	dst = binary.AppendUvarint(dst, a.Head)
	dst = binary.AppendUvarint(dst, uint64(len(a.Events)))
	for _, e := range a.Events {
		dst = binary.AppendUvarint(dst, e.Seq)
		n := valueSize(e)
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = append(dst, make([]byte, n)...)
		putValue(dst[len(dst)-n:], e)
	}
	if cp := a.Checkpoint; cp != nil {
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(len(cp.Emitter)))
		dst = append(dst, cp.Emitter...)
		dst = binary.AppendUvarint(dst, uint64(len(cp.Value)))
		return append(dst, cp.Value...)
	}
	return append(dst, 0)
}

// recordReader walks a record; the first malformed field sticks in err
// and every later read returns zero values.
type recordReader struct {
	b   []byte
	ar  *arena
	err error
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errBadRecord
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *recordReader) lenBytes() []byte { return r.bytes(r.uvarint()) }

// applyRecord writes every entry of rec inside tx. Keys and values
// alias rec, which must stay untouched until the transaction ends.
func applyRecord(tx *bbolt.Tx, rec []byte, ar *arena) error {
	t := newTxApply(tx, ar)
	if err := t.record(rec); err != nil {
		return err
	}
	return t.finish()
}

// txApply applies the records of one transaction (the applier's, or one
// chunk of a replay) in order. Queue posts are held until finish, so a
// message posted and deleted within the same transaction, the common
// case when consumers keep up, never touches the B-tree.
type txApply struct {
	tx    *bbolt.Tx
	ar    *arena
	posts map[string]*heldPosts // by queue bucket name
	order []string              // queue names in first-post order
}

func newTxApply(tx *bbolt.Tx, ar *arena) *txApply { return &txApply{tx: tx, ar: ar} }

// record applies one record.
func (t *txApply) record(rec []byte) error {
	r := recordReader{b: rec, ar: t.ar}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		var err error
		if len(r.b) > 0 && r.b[0] == entryTagged {
			err = t.tagged(&r)
		} else {
			err = applyOne(t.tx, &r)
		}
		if err != nil {
			return err
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadRecord
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	return nil
}

// applyOne writes one append. The head only moves forward: max(stored,
// the append's head, its highest event seq).
func applyOne(tx *bbolt.Tx, r *recordReader) error {
	name := r.lenBytes()
	if r.err == nil && !validKey(name) {
		r.err = errBadRecord // Commit refuses such names: damage
	}
	head := r.uvarint()
	if n := r.uvarint(); n > 0 && r.err == nil {
		hist, err := tx.Bucket(bktHistory).CreateBucketIfNotExists(name)
		if err != nil {
			return fmt.Errorf("bolt: history of %q: %w", name, err)
		}
		// Seqs arrive in ascending order, so pages can be packed fuller
		// than bbolt's default 50% split.
		hist.FillPercent = 0.9
		for ; n > 0 && r.err == nil; n-- {
			seq := r.uvarint()
			v := r.lenBytes()
			if r.err != nil {
				break
			}
			k := r.keyFor(seq)
			if err := hist.Put(k, v); err != nil {
				return fmt.Errorf("bolt: put %q seq %d: %w", name, seq, err)
			}
			head = max(head, seq)
		}
	}
	var cpName, cpValue []byte
	hasCP := r.bytes(1)
	if len(hasCP) == 1 && hasCP[0] == 1 {
		cpName, cpValue = r.lenBytes(), r.lenBytes()
		if r.err == nil && !validKey(cpName) {
			r.err = errBadRecord
		}
	} else if len(hasCP) == 1 && hasCP[0] != 0 {
		r.err = errBadRecord
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	if head > 0 {
		heads := tx.Bucket(bktHeads)
		if keySeq(heads.Get(name)) < head {
			if err := heads.Put(name, r.keyFor(head)); err != nil {
				return fmt.Errorf("bolt: head of %q: %w", name, err)
			}
		}
	}
	if cpName != nil {
		if err := tx.Bucket(bktCheckpoints).Put(cpName, cpValue); err != nil {
			return fmt.Errorf("bolt: checkpoint of %q: %w", cpName, err)
		}
	}
	return nil
}

// keyFor returns seq as an 8-byte key from the transaction's arena:
// bbolt keeps the slices given to Put until commit.
func (r *recordReader) keyFor(seq uint64) []byte {
	k := r.ar.alloc(8)
	putSeq(k, seq)
	return k
}

func validKey(k []byte) bool { return len(k) > 0 && len(k) <= bbolt.MaxKeySize }
