package bolt

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
)

// Tagged record entries: queue posts and deletes, journaled like stream
// appends (see queue_journal.go). After the tag byte and the kind:
//
//	kind 1, queue post:
//	  uvarint len, queue bucket name (queueName)
//	  uvarint number of messages, then per message:
//	    uvarint seq, uvarint len, value (queue_codec.go format)
//	kind 2, queue delete:
//	  uvarint len, queue bucket name
//	  uvarint number of seqs, then per seq: uvarint seq
//
// Both apply idempotently, so a record applied again after a crash (its
// position not yet stored) changes nothing: a post puts the same values
// and moves the queue's last seq only up, a delete of a missing seq is a
// no-op. A kind this build does not know is damage (ErrCorrupt): a newer
// build's journal is refused by the schema check before replay.
const (
	entryTagged      = 0
	entryQueuePost   = 1
	entryQueueDelete = 2
)

// appendTaggedHeader starts a tagged entry of kind for queue bucket name
// with n items.
func appendTaggedHeader(dst []byte, kind byte, name []byte, n int) []byte {
	dst = append(dst, entryTagged, kind)
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	return binary.AppendUvarint(dst, uint64(n))
}

// appendPostedMessage adds one message of a post entry and returns the
// slice its value occupies (encode fills it).
func appendPostedMessage(dst []byte, seq uint64, valueLen int) ([]byte, []byte) {
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(valueLen))
	dst = append(dst, make([]byte, valueLen)...)
	return dst, dst[len(dst)-valueLen:]
}

// applyTagged applies one tagged entry.
func applyTagged(tx *bbolt.Tx, r *recordReader) error {
	tag := r.bytes(2)
	name := r.lenBytes()
	if r.err == nil && !validKey(name) {
		r.err = errBadRecord
	}
	n := r.uvarint()
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	switch tag[1] {
	case entryQueuePost:
		return applyQueuePost(tx, r, name, n)
	case entryQueueDelete:
		return applyQueueDelete(tx, r, name, n)
	default:
		return fmt.Errorf("%w: %w: entry kind %d", ErrCorrupt, errBadRecord, tag[1])
	}
}

func applyQueuePost(tx *bbolt.Tx, r *recordReader, name []byte, n uint64) error {
	root, err := tx.CreateBucketIfNotExists(bktQueues)
	if err != nil {
		return fmt.Errorf("bolt: queues bucket: %w", err)
	}
	b := root.Bucket(name)
	if b == nil {
		// Journaled posts go to existing queues; a queue deleted
		// meanwhile comes back, as it would had the post come later.
		if b, _, err = ensureQueue(tx, name, []byte("{}")); err != nil {
			return err
		}
	}
	mb := b.Bucket(qbktMsgs)
	if mb == nil {
		return fmt.Errorf("%w: queue %q has no messages bucket", ErrCorrupt, name)
	}
	mb.FillPercent = 0.9 // seqs only grow
	last := keySeq(b.Get(qkSeq))
	for ; n > 0 && r.err == nil; n-- {
		seq := r.uvarint()
		v := r.lenBytes()
		if r.err != nil {
			break
		}
		if _, err := decodeMsg(v); err != nil || seq == 0 {
			r.err = errBadRecord
			break
		}
		if err := mb.Put(r.keyFor(seq), v); err != nil {
			return fmt.Errorf("bolt: post to %q: %w", name, err)
		}
		last = max(last, seq)
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	if keySeq(b.Get(qkSeq)) < last {
		return b.Put(qkSeq, r.keyFor(last))
	}
	return nil
}

func applyQueueDelete(tx *bbolt.Tx, r *recordReader, name []byte, n uint64) error {
	var sc seqCursor
	if b := queueBucket(tx, name); b != nil {
		mb := b.Bucket(qbktMsgs)
		if mb == nil {
			return fmt.Errorf("%w: queue %q has no messages bucket", ErrCorrupt, name)
		}
		sc = newSeqCursor(mb, nil)
	}
	for ; n > 0 && r.err == nil; n-- {
		seq := r.uvarint()
		if r.err != nil || sc.c == nil {
			continue // parse the rest: a damaged entry is still damage
		}
		if err := sc.del(seq); err != nil {
			return fmt.Errorf("bolt: delete from %q: %w", name, err)
		}
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	return nil
}
