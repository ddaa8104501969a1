package bolt

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
)

// Queue message values are a fixed header and the raw JSON body:
//
//	[0]      format version (msgV1)
//	[1:9]    created, Unix ns          [9:17]  expires, Unix ns
//	[17:25]  ttl, ns                   [25:41] client id (UUID bytes)
//	[41:57]  claim id (zero: never)    [57:65] claim expires, Unix ns
//	[65:]    body
//
// A claim counts only while its expiry is after now, so an expired claim
// needs no write to free its messages.
const (
	msgV1     = 1
	msgHdrLen = 65
)

// Claim values: created, expires, ttl, grace (8 bytes each), then the
// seqs of the messages claimed.
const claimHdrLen = 32

var errBadQueueValue = errors.New("malformed queue value")

type msgRec struct {
	created, expires, ttl int64
	client                uuid.UUID
	claim                 uuid.UUID
	claimExp              int64
	body                  []byte // aliases the value
}

func decodeMsg(v []byte) (msgRec, error) {
	if len(v) < msgHdrLen || v[0] != msgV1 {
		return msgRec{}, errBadQueueValue
	}
	var r msgRec
	r.created = int64(binary.BigEndian.Uint64(v[1:9]))
	r.expires = int64(binary.BigEndian.Uint64(v[9:17]))
	r.ttl = int64(binary.BigEndian.Uint64(v[17:25]))
	copy(r.client[:], v[25:41])
	copy(r.claim[:], v[41:57])
	r.claimExp = int64(binary.BigEndian.Uint64(v[57:65]))
	r.body = v[msgHdrLen:]
	return r, nil
}

func (r *msgRec) encode(dst []byte) {
	dst[0] = msgV1
	binary.BigEndian.PutUint64(dst[1:9], uint64(r.created))
	binary.BigEndian.PutUint64(dst[9:17], uint64(r.expires))
	binary.BigEndian.PutUint64(dst[17:25], uint64(r.ttl))
	copy(dst[25:41], r.client[:])
	copy(dst[41:57], r.claim[:])
	binary.BigEndian.PutUint64(dst[57:65], uint64(r.claimExp))
	copy(dst[msgHdrLen:], r.body)
}

// claimedAt reports whether an active claim holds the message at now.
func (r *msgRec) claimedAt(now int64) bool { return r.claim != uuid.Nil && r.claimExp > now }

// message materializes r with body copied into slab.
func (r *msgRec) message(seq uint64, now int64, slab *[]byte) queue.Message {
	start := len(*slab)
	*slab = append(*slab, r.body...)
	m := queue.Message{
		ID:      msgID(seq),
		Body:    (*slab)[start:len(*slab):len(*slab)],
		TTL:     time.Duration(r.ttl),
		Created: time.Unix(0, r.created).UTC(),
		Expires: time.Unix(0, r.expires).UTC(),
	}
	if r.client != uuid.Nil {
		m.ClientID = r.client.String()
	}
	if r.claimedAt(now) {
		m.ClaimID = r.claim.String()
		m.ClaimExpires = time.Unix(0, r.claimExp).UTC()
	}
	return m
}

type claimRec struct {
	created, expires, ttl, grace int64
	seqs                         []byte // aliases the value, 8 bytes per seq
}

func decodeClaim(v []byte) (claimRec, error) {
	if len(v) < claimHdrLen || (len(v)-claimHdrLen)%8 != 0 {
		return claimRec{}, errBadQueueValue
	}
	return claimRec{
		created: int64(binary.BigEndian.Uint64(v[0:8])),
		expires: int64(binary.BigEndian.Uint64(v[8:16])),
		ttl:     int64(binary.BigEndian.Uint64(v[16:24])),
		grace:   int64(binary.BigEndian.Uint64(v[24:32])),
		seqs:    v[claimHdrLen:],
	}, nil
}

func (c *claimRec) encode(dst []byte) {
	binary.BigEndian.PutUint64(dst[0:8], uint64(c.created))
	binary.BigEndian.PutUint64(dst[8:16], uint64(c.expires))
	binary.BigEndian.PutUint64(dst[16:24], uint64(c.ttl))
	binary.BigEndian.PutUint64(dst[24:32], uint64(c.grace))
	copy(dst[claimHdrLen:], c.seqs)
}

// msgID is a message's public id: its seq in 16 hex digits, so ids sort
// as strings in post order.
func msgID(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return hex.EncodeToString(b[:])
}

// parseMsgID returns 0 for anything that is not a message id.
func parseMsgID(id string) uint64 {
	if len(id) != 16 {
		return 0
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}

func parseClaimID(id string) (uuid.UUID, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u == uuid.Nil {
		return uuid.Nil, false
	}
	return u, true
}
