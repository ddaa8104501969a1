package bolt

import (
	"encoding/binary"
	"fmt"
	"slices"
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
// no-op. A kind this build does not know is damage (ErrCorrupt), so a
// replay fails (ErrApply) rather than skip a write it cannot read; a
// journal is empty after a clean Close, so this only concerns a crash
// followed by a downgrade.
const (
	entryTagged      = 0
	entryQueuePost   = 1
	entryQueueDelete = 2
)

// appendTaggedHeader starts a tagged entry of kind for queue bucket name
// with n items.
func appendTaggedHeader[S string | []byte](dst []byte, kind byte, name S, n int) []byte {
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

// tagged applies one tagged entry.
func (t *txApply) tagged(r *recordReader) error {
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
		return t.queuePost(r, name, n)
	case entryQueueDelete:
		return t.queueDelete(r, name, n)
	default:
		return fmt.Errorf("%w: %w: entry kind %d", ErrCorrupt, errBadRecord, tag[1])
	}
}

// heldPosts are the messages posted to one queue in a transaction and
// not deleted in it yet.
type heldPosts struct {
	name []byte
	msgs map[uint64][]byte
	last uint64 // the highest seq posted
}

// queuePost holds a post's messages for finish.
func (t *txApply) queuePost(r *recordReader, name []byte, n uint64) error {
	h := t.posts[string(name)]
	if h == nil {
		if t.posts == nil {
			t.posts = map[string]*heldPosts{}
		}
		h = &heldPosts{name: name, msgs: map[uint64][]byte{}}
		t.posts[string(name)] = h
		t.order = append(t.order, string(name))
	}
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
		h.msgs[seq] = v
		h.last = max(h.last, seq)
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	return nil
}

// queueDelete deletes seqs: those posted in this transaction are only
// dropped from what finish puts, the others are deleted from the B-tree.
func (t *txApply) queueDelete(r *recordReader, name []byte, n uint64) error {
	h := t.posts[string(name)]
	var sc seqCursor
	for ; n > 0 && r.err == nil; n-- {
		seq := r.uvarint()
		if r.err != nil {
			break
		}
		if h != nil {
			if _, ok := h.msgs[seq]; ok {
				delete(h.msgs, seq)
				continue
			}
		}
		if sc.c == nil {
			b := queueBucket(t.tx, name)
			if b == nil {
				continue // parse the rest: a damaged entry is still damage
			}
			mb := b.Bucket(qbktMsgs)
			if mb == nil {
				return fmt.Errorf("%w: queue %q has no messages bucket", ErrCorrupt, name)
			}
			sc = newSeqCursor(mb, nil)
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

// finish puts the held posts, in seq order, and moves each queue's last
// seq up to the highest posted (deleted or not, so seqs are never
// handed out twice).
func (t *txApply) finish() error {
	for _, name := range t.order {
		if err := t.putPosts(t.posts[name]); err != nil {
			return err
		}
	}
	return nil
}

func (t *txApply) putPosts(h *heldPosts) error {
	root, err := t.tx.CreateBucketIfNotExists(bktQueues)
	if err != nil {
		return fmt.Errorf("bolt: queues bucket: %w", err)
	}
	b := root.Bucket(h.name)
	if b == nil {
		// Journaled posts go to existing queues; a queue deleted
		// meanwhile comes back, as it would had the post come later.
		if b, _, err = ensureQueue(t.tx, h.name, []byte("{}")); err != nil {
			return err
		}
	}
	mb := b.Bucket(qbktMsgs)
	if mb == nil {
		return fmt.Errorf("%w: queue %q has no messages bucket", ErrCorrupt, h.name)
	}
	mb.FillPercent = 0.9 // seqs only grow
	seqs := make([]uint64, 0, len(h.msgs))
	for seq := range h.msgs {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		k := t.ar.alloc(8)
		putSeq(k, seq)
		if err := mb.Put(k, h.msgs[seq]); err != nil {
			return fmt.Errorf("bolt: post to %q: %w", h.name, err)
		}
	}
	if keySeq(b.Get(qkSeq)) < h.last {
		k := t.ar.alloc(8)
		putSeq(k, h.last)
		return b.Put(qkSeq, k)
	}
	return nil
}
