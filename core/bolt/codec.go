package bolt

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// History values are a small binary record rather than JSON: encoding is
// a few appends, decoding slices the value without allocating, and the
// time sits at a fixed offset so age pruning reads 8 bytes per event.
//
//	[0]    format version (valueV1)
//	[1:9]  time, Unix nanoseconds, big-endian two's complement
//	       (math.MinInt64 means the zero time.Time)
//	uvarint length of type, then type bytes
//	the rest: data (raw JSON, possibly empty)
const (
	valueV1      = 1
	valueHdrLen  = 9
	zeroTimeNano = math.MinInt64
)

var errBadValue = errors.New("malformed history value")

// minNano and maxNano bound the instants UnixNano can represent.
var (
	minNano = time.Unix(0, math.MinInt64+1)
	maxNano = time.Unix(0, math.MaxInt64)
)

// timeToNano maps t to Unix nanoseconds, clamping instants int64 cannot
// hold so they still sort correctly against age bounds.
func timeToNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return zeroTimeNano
	case t.Before(minNano):
		return math.MinInt64 + 1
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func nanoToTime(n int64) time.Time {
	if n == zeroTimeNano {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// valueSize is the exact encoded length of e.
func valueSize(e *event.Event) int {
	return valueHdrLen + uvarintLen(uint64(len(e.Type))) + len(e.Type) + len(e.Data)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// putValue encodes e into dst, which must be exactly valueSize(e) long.
func putValue(dst []byte, e *event.Event) {
	dst[0] = valueV1
	binary.BigEndian.PutUint64(dst[1:9], uint64(timeToNano(e.Time)))
	n := valueHdrLen + binary.PutUvarint(dst[valueHdrLen:], uint64(len(e.Type)))
	n += copy(dst[n:], e.Type)
	copy(dst[n:], e.Data)
}

// valueNano reads only the time of an encoded value.
func valueNano(v []byte) (int64, error) {
	if len(v) < valueHdrLen || v[0] != valueV1 {
		return 0, errBadValue
	}
	return int64(binary.BigEndian.Uint64(v[1:9])), nil
}

// decodeValue splits v into its parts; typ and data alias v.
func decodeValue(v []byte) (typ []byte, nano int64, data []byte, err error) {
	nano, err = valueNano(v)
	if err != nil {
		return nil, 0, nil, err
	}
	l, n := binary.Uvarint(v[valueHdrLen:])
	if n <= 0 {
		return nil, 0, nil, errBadValue
	}
	rest := v[valueHdrLen+n:]
	if l > uint64(len(rest)) {
		return nil, 0, nil, errBadValue
	}
	return rest[:l], nano, rest[l:], nil
}

func putSeq(dst []byte, seq uint64) { binary.BigEndian.PutUint64(dst, seq) }

func seqKey(seq uint64) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k
}

func keySeq(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}
