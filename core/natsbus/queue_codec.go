package natsbus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The log's binary encoding. It replaced JSON because decoding entries
// (every node decodes every entry) was the largest CPU cost of the
// 3-node BenchmarkJetStreamQueue (24% of all samples, mostly scanning
// message bodies); bodies are now copied, not parsed.
//
//	entry: version (1 byte) | inst (string) | batch (uvarint) | op count (uvarint) | ops
//	op:    length (uvarint) | kind (1 byte) | tenant | queue (strings) | now (varint) |
//	       meta (bytes) | client (string) | msgs: count (uvarint), each body (bytes) ttl (varint) |
//	       ids, claims: count (uvarint), each a string | claim (string) | ttl, grace, limit (varint)
//
// Strings and bytes are a uvarint length and the bytes. Every op has
// every field (an unused one costs a byte), so the format has no
// per-kind layout to get wrong.

const logV1 = 1

var errBadEntry = errors.New("malformed queue log entry")

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// appendOp appends o (without its length prefix).
func appendOp(dst []byte, o *op) []byte {
	dst = append(dst, byte(o.Kind))
	dst = appendString(dst, o.Tenant)
	dst = appendString(dst, o.Queue)
	dst = binary.AppendVarint(dst, o.Now)
	dst = appendBytes(dst, o.Meta)
	dst = appendString(dst, o.Client)
	dst = binary.AppendUvarint(dst, uint64(len(o.Msgs)))
	for _, m := range o.Msgs {
		dst = appendBytes(dst, m.Body)
		dst = binary.AppendVarint(dst, m.TTL)
	}
	for _, list := range [][]string{o.IDs, o.Claims} {
		dst = binary.AppendUvarint(dst, uint64(len(list)))
		for _, s := range list {
			dst = appendString(dst, s)
		}
	}
	dst = appendString(dst, o.Claim)
	dst = binary.AppendVarint(dst, o.TTL)
	dst = binary.AppendVarint(dst, o.Grace)
	return binary.AppendVarint(dst, int64(o.Limit))
}

// appendEntry appends the entry of ops (each encoded by appendOp).
func appendEntry(dst []byte, inst string, batch uint64, ops [][]byte) []byte {
	dst = append(dst, logV1)
	dst = appendString(dst, inst)
	dst = binary.AppendUvarint(dst, batch)
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for _, o := range ops {
		dst = appendBytes(dst, o)
	}
	return dst
}

// reader decodes; the first error sticks and every later read is zero.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errBadEntry
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items that take at least one byte each.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// bytes returns the next bytes, aliasing the input.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) byte1() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// decodeEntry decodes an entry. Bodies and metadata are copied out of
// data (one allocation per op), so the State keeps no log buffer alive.
func decodeEntry(data []byte) (entry, error) {
	r := &reader{b: data}
	if v := r.byte1(); v != logV1 && r.err == nil {
		return entry{}, fmt.Errorf("%w: version %d", errBadEntry, v)
	}
	e := entry{Inst: r.string(), Batch: r.uvarint()}
	e.Ops = make([]op, r.count())
	for i := range e.Ops {
		or := &reader{b: r.bytes()}
		decodeOp(or, &e.Ops[i])
		if or.err != nil || len(or.b) != 0 {
			r.fail()
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return e, r.err
}

func decodeOp(r *reader, o *op) {
	o.Kind = opKind(r.byte1())
	o.Tenant, o.Queue = r.string(), r.string()
	o.Now = r.varint()
	o.Meta = r.bytes()
	o.Client = r.string()
	if n := r.count(); n > 0 {
		o.Msgs = make([]logMsg, n)
		for i := range o.Msgs {
			o.Msgs[i] = logMsg{Body: r.bytes(), TTL: r.varint()}
		}
	}
	for _, list := range []*[]string{&o.IDs, &o.Claims} {
		if n := r.count(); n > 0 {
			*list = make([]string, n)
			for i := range *list {
				(*list)[i] = r.string()
			}
		}
	}
	o.Claim = r.string()
	o.TTL, o.Grace, o.Limit = r.varint(), r.varint(), int(r.varint())
	o.own()
}

// own copies the bytes o aliases (metadata, bodies) into one allocation.
func (o *op) own() {
	size := len(o.Meta)
	for _, m := range o.Msgs {
		size += len(m.Body)
	}
	if size == 0 {
		o.Meta = nil
		return
	}
	slab := make([]byte, 0, size)
	take := func(b []byte) []byte {
		start := len(slab)
		slab = append(slab, b...)
		return slab[start:len(slab):len(slab)]
	}
	if len(o.Meta) > 0 {
		o.Meta = take(o.Meta)
	} else {
		o.Meta = nil
	}
	for i := range o.Msgs {
		o.Msgs[i].Body = take(o.Msgs[i].Body)
	}
}
