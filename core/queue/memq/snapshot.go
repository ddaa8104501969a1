package memq

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/google/uuid"
)

// A snapshot is the State as JSON. Restoring it gives a State that
// answers every later call as the original would: the free candidates
// are rebuilt from the live messages no claim holds, which are the only
// ones the original could still hand out.

type snapState struct {
	Seq    uint64      `json:"seq"`
	Clock  int64       `json:"clock"`
	Reaped int         `json:"reaped"`
	Queues []snapQueue `json:"queues"`
}

type snapQueue struct {
	Tenant string          `json:"tenant"`
	Name   string          `json:"name"`
	Meta   json.RawMessage `json:"meta"`
	Msgs   []snapMsg       `json:"msgs"`
	Claims []snapClaim     `json:"claims"`
}

type snapMsg struct {
	Seq     uint64    `json:"s"`
	Created int64     `json:"c"`
	Expires int64     `json:"e"`
	TTL     int64     `json:"t"`
	Client  uuid.UUID `json:"u"`
	// Body is bytes, not raw JSON: the State does not require JSON bodies.
	Body []byte `json:"b"`
}

type snapClaim struct {
	ID      uuid.UUID `json:"id"`
	Created int64     `json:"c"`
	Expires int64     `json:"e"`
	TTL     int64     `json:"t"`
	Grace   int64     `json:"g"`
	Seqs    []uint64  `json:"s"`
}

// WriteSnapshot writes the whole State to w.
func (s *State) WriteSnapshot(w io.Writer) error {
	snap := snapState{Seq: s.seq, Clock: s.clock, Reaped: s.reaped}
	for tenant, t := range s.tenants {
		for name, q := range t {
			sq := snapQueue{Tenant: tenant, Name: name, Meta: q.meta, Msgs: make([]snapMsg, 0, len(q.msgs)-q.dead)}
			for _, m := range q.msgs {
				if !m.dead {
					sq.Msgs = append(sq.Msgs, snapMsg{m.seq, m.created, m.expires, m.ttl, m.client, m.body})
				}
			}
			for _, c := range q.claims.All() {
				sq.Claims = append(sq.Claims, snapClaim(c))
			}
			snap.Queues = append(snap.Queues, sq)
		}
	}
	if err := json.NewEncoder(w).Encode(&snap); err != nil {
		return fmt.Errorf("memq: write snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot restores a State written by WriteSnapshot.
func ReadSnapshot(r io.Reader) (*State, error) {
	var snap snapState
	if err := json.NewDecoder(r).Decode(&snap); err != nil {
		return nil, fmt.Errorf("memq: read snapshot: %w", err)
	}
	s := New()
	s.seq, s.clock, s.reaped = snap.Seq, snap.Clock, snap.Reaped
	for _, sq := range snap.Queues {
		t := s.tenants[sq.Tenant]
		if t == nil {
			t = map[string]*queueState{}
			s.tenants[sq.Tenant] = t
		}
		q := newQueueState(sq.Meta)
		t[sq.Name] = q
		slices.SortFunc(sq.Msgs, func(a, b snapMsg) int { return cmp.Compare(a.Seq, b.Seq) })
		q.msgs = make([]msg, len(sq.Msgs))
		for i, m := range sq.Msgs {
			q.msgs[i] = msg{seq: m.Seq, created: m.Created, expires: m.Expires, ttl: m.TTL, client: m.Client, body: m.Body}
			q.minExp = min(q.minExp, m.Expires)
		}
		for _, c := range sq.Claims {
			q.claims.Hold(c.ID, c.Seqs, c.Created, c.Expires, c.TTL, c.Grace)
		}
		q.rebuildFree()
	}
	return s, nil
}

// rebuildFree makes every stored message no claim holds a candidate.
func (q *queueState) rebuildFree() {
	var lo, hi uint64
	for _, m := range q.msgs {
		if q.claims.owner.Has(m.seq) {
			continue
		}
		if hi != 0 && m.seq == hi+1 {
			hi = m.seq
			continue
		}
		if hi != 0 {
			q.claims.AddFree(lo, hi)
		}
		lo, hi = m.seq, m.seq
	}
	if hi != 0 {
		q.claims.AddFree(lo, hi)
	}
	if len(q.msgs) == 0 {
		q.minExp = math.MaxInt64
	}
}
