package bolt

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
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

// msgSlab holds what the messages of one read share: their bodies, in
// one buffer, and the last client and claim ids formatted, since a
// claim's messages share its id and mostly come from one producer (one
// string each, not two per message).
type msgSlab struct {
	body              []byte
	client, claim     uuid.UUID
	clientStr, claimS string
	// ids, if set, holds the ids of the next messages in order, 16 bytes
	// each (one string for a claim's ids instead of one per message).
	ids string
}

// id is seq's id, taken from s.ids when they were formatted ahead.
func (s *msgSlab) id(seq uint64) string {
	if len(s.ids) < 16 {
		return memq.MessageID(seq)
	}
	id := s.ids[:16]
	s.ids = s.ids[16:]
	return id
}

// message materializes r with body copied into s.
func (r *msgRec) message(seq uint64, now int64, s *msgSlab) queue.Message {
	start := len(s.body)
	s.body = append(s.body, r.body...)
	m := queue.Message{
		ID:      s.id(seq),
		Body:    s.body[start:len(s.body):len(s.body)],
		TTL:     time.Duration(r.ttl),
		Created: time.Unix(0, r.created).UTC(),
		Expires: time.Unix(0, r.expires).UTC(),
	}
	if r.client != uuid.Nil {
		if r.client != s.client || s.clientStr == "" {
			s.client, s.clientStr = r.client, r.client.String()
		}
		m.ClientID = s.clientStr
	}
	if r.claimedAt(now) {
		if r.claim != s.claim || s.claimS == "" {
			s.claim, s.claimS = r.claim, r.claim.String()
		}
		m.ClaimID = s.claimS
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
