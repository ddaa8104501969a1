// Package memq is the deterministic in-memory state of queues: messages,
// claims and metadata of every tenant, changed only by calls that carry
// everything they depend on (the instant, the new claim's id). Applying
// the same calls in the same order to two States leaves them equal and
// returns the same results, so a cluster keeps one State per node in
// step by applying one ordered log of calls (core/natsbus does that over
// JetStream).
//
// Writes never go back in time: each applies at the later of its own
// now and the latest instant a write applied at (reads use their own
// now). Proposers' clocks differ and concurrent writes reach a log out of
// order, so without that a write could see alive what an earlier write
// found expired, and a State restored from a snapshot could decide
// otherwise than the one it was taken from. A node whose clock runs far
// ahead moves every node's write clock with it: keep clocks in sync.
//
// Message seqs come from one counter of the State, so ids sort in post
// order within a queue and are never reused, not even after the queue is
// deleted. The claim table (Claims) is separate from the messages and
// asks the store only whether a seq is live, so another message store
// can reuse it.
//
// A State is not safe for concurrent use: its owner serializes writes
// and may run reads concurrently with each other (they do not mutate).
package memq

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
)

// State is every queue of every tenant.
type State struct {
	tenants map[string]map[string]*queueState
	seq     uint64 // last message seq assigned
	clock   int64  // the latest instant a write applied at (Unix ns)
	// reaped counts claims that expired inside other calls since the last
	// Expire, which reports them.
	reaped int
}

// New returns an empty State.
func New() *State { return &State{tenants: map[string]map[string]*queueState{}} }

type msg struct {
	seq                   uint64
	created, expires, ttl int64
	client                uuid.UUID
	body                  []byte
	dead                  bool
}

type queueState struct {
	meta json.RawMessage
	// msgs is sorted by seq; deleted ones are marked dead until compacted.
	msgs   []msg
	dead   int
	claims *Claims
	// minExp is at most the earliest expiry of any message in it.
	minExp int64
}

func newQueueState(meta json.RawMessage) *queueState {
	return &queueState{meta: meta, claims: NewClaims(), minExp: math.MaxInt64}
}

func (s *State) queue(k queue.Key) *queueState { return s.tenants[k.Tenant][k.Queue] }

func (s *State) ensure(k queue.Key, meta json.RawMessage) (*queueState, bool) {
	if q := s.queue(k); q != nil {
		return q, false
	}
	t := s.tenants[k.Tenant]
	if t == nil {
		t = map[string]*queueState{}
		s.tenants[k.Tenant] = t
	}
	q := newQueueState(meta)
	t[k.Queue] = q
	return q, true
}

// index returns seq's index in q.msgs, or -1 when it is not stored.
func (q *queueState) index(seq uint64) int {
	i, ok := slices.BinarySearchFunc(q.msgs, seq, func(m msg, s uint64) int { return cmp.Compare(m.seq, s) })
	if !ok || q.msgs[i].dead {
		return -1
	}
	return i
}

// liveAt returns seq's message if it exists at now.
func (q *queueState) liveAt(seq uint64, now int64) *msg {
	if i := q.index(seq); i >= 0 && q.msgs[i].expires > now {
		return &q.msgs[i]
	}
	return nil
}

// remove deletes the message at index i.
func (q *queueState) remove(i int) {
	m := &q.msgs[i]
	q.claims.Forget(m.seq)
	m.dead, m.body = true, nil
	q.dead++
}

// compact drops dead messages once they are most of the slice, and
// always those at its head (consumers delete from the head).
func (q *queueState) compact() {
	n := 0
	for n < len(q.msgs) && q.msgs[n].dead {
		n++
	}
	if n > 0 {
		q.msgs, q.dead = q.msgs[n:], q.dead-n
	}
	if q.dead > 64 && q.dead*2 > len(q.msgs) {
		q.msgs = slices.DeleteFunc(q.msgs, func(m msg) bool { return m.dead })
		q.dead = 0
	}
}

// message materializes m at now. Its Body aliases the State's copy,
// which is never modified: callers must not modify it either.
func (q *queueState) message(m *msg, now int64) queue.Message {
	out := queue.Message{
		ID: MessageID(m.seq), Body: m.body, TTL: ns(m.ttl),
		Created: unix(m.created), Expires: unix(m.expires),
	}
	if m.client != uuid.Nil {
		out.ClientID = m.client.String()
	}
	if id, exp, ok := q.claims.Holder(m.seq, now); ok {
		out.ClaimID, out.ClaimExpires = id.String(), unix(exp)
	}
	return out
}

// MessageID is a message's public id: its seq in 16 hex digits, so ids
// sort as strings in post order.
func MessageID(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return hex.EncodeToString(b[:])
}

// AppendMessageID appends MessageID(seq) to b.
func AppendMessageID(b []byte, seq uint64) []byte {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return hex.AppendEncode(b, s[:])
}

// MessageIDs returns the ids of the n seqs from first on. They share one
// string: a post's ids were an allocation each.
func MessageIDs(first uint64, n int) []string {
	var small [16 * 16]byte // the usual batch is formatted on the stack
	b := small[:0]
	for i := range n {
		b = AppendMessageID(b, first+uint64(i))
	}
	all := string(b)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = all[16*i : 16*i+16]
	}
	return ids
}

// ParseMessageID returns 0 for anything that is not a message id.
func ParseMessageID(id string) uint64 {
	if len(id) != 16 {
		return 0
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}

// ParseClaimID parses a claim id; the nil UUID is none.
func ParseClaimID(id string) (uuid.UUID, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u == uuid.Nil {
		return uuid.Nil, false
	}
	return u, true
}
