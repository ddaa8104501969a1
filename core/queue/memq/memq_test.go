package memq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

// driver serves a State as a queue.Driver, the simplest owner one can
// have. With roundtrip, every write is followed by a snapshot and a
// restore, so the contract also proves snapshots lose nothing.
type driver struct {
	t         *testing.T
	roundtrip bool
	mu        sync.RWMutex
	s         *memq.State
}

func (d *driver) write(fn func(s *memq.State)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d.s)
	if !d.roundtrip {
		return
	}
	var buf bytes.Buffer
	if err := d.s.WriteSnapshot(&buf); err != nil {
		d.t.Error(err)
		return
	}
	s, err := memq.ReadSnapshot(&buf)
	if err != nil {
		d.t.Error(err)
		return
	}
	d.s = s
}

func (d *driver) read(fn func(s *memq.State)) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	fn(d.s)
}

func (d *driver) CreateQueue(_ context.Context, k queue.Key, meta json.RawMessage, _ time.Time) (created bool, err error) {
	d.write(func(s *memq.State) { created = s.CreateQueue(k, meta) })
	return created, nil
}

func (d *driver) QueueMetadata(_ context.Context, k queue.Key) (meta json.RawMessage, err error) {
	d.read(func(s *memq.State) { meta, err = s.QueueMetadata(k) })
	return meta, err
}

func (d *driver) SetQueueMetadata(_ context.Context, k queue.Key, meta json.RawMessage) (err error) {
	d.write(func(s *memq.State) { err = s.SetQueueMetadata(k, meta) })
	return err
}

func (d *driver) ListQueues(_ context.Context, tenant, marker string, limit int) (out []queue.QueueInfo, err error) {
	d.read(func(s *memq.State) { out = s.ListQueues(tenant, marker, limit) })
	return out, nil
}

func (d *driver) DeleteQueue(_ context.Context, k queue.Key) error {
	d.write(func(s *memq.State) { s.DeleteQueue(k) })
	return nil
}

func (d *driver) QueueStats(_ context.Context, k queue.Key, now time.Time) (st queue.Stats, err error) {
	d.read(func(s *memq.State) { st = s.QueueStats(k, now) })
	return st, nil
}

func (d *driver) PostMessages(_ context.Context, k queue.Key, clientID string, msgs []queue.NewMessage, now time.Time) (ids []string, err error) {
	d.write(func(s *memq.State) { ids = s.PostMessages(k, uuid.MustParse(clientID), msgs, now) })
	return ids, nil
}

func (d *driver) ListMessages(_ context.Context, k queue.Key, o queue.ListOptions, now time.Time) (p queue.Page, err error) {
	d.read(func(s *memq.State) { p = s.ListMessages(k, o, now) })
	return p, nil
}

func (d *driver) GetMessages(_ context.Context, k queue.Key, ids []string, now time.Time) (ms []queue.Message, err error) {
	d.read(func(s *memq.State) { ms = s.GetMessages(k, ids, now) })
	return ms, nil
}

func (d *driver) DeleteMessages(_ context.Context, k queue.Key, ids, claimIDs []string, now time.Time) (err error) {
	d.write(func(s *memq.State) { err = s.DeleteMessages(k, ids, claimIDs, now) })
	return err
}

func (d *driver) PopMessages(_ context.Context, k queue.Key, limit int, now time.Time) (ms []queue.Message, err error) {
	d.write(func(s *memq.State) { ms = s.PopMessages(k, limit, now) })
	return ms, nil
}

func (d *driver) CreateClaim(_ context.Context, k queue.Key, o queue.ClaimOptions, now time.Time) (c queue.Claim, err error) {
	d.write(func(s *memq.State) { c = s.CreateClaim(k, uuid.New(), o, now) })
	return c, nil
}

func (d *driver) GetClaim(_ context.Context, k queue.Key, id string, now time.Time) (c queue.Claim, err error) {
	d.read(func(s *memq.State) { c, err = s.GetClaim(k, id, now) })
	return c, err
}

func (d *driver) RenewClaim(_ context.Context, k queue.Key, id string, ttl, grace time.Duration, now time.Time) (err error) {
	d.write(func(s *memq.State) { err = s.RenewClaim(k, id, ttl, grace, now) })
	return err
}

func (d *driver) ReleaseClaim(_ context.Context, k queue.Key, id string, now time.Time) error {
	d.write(func(s *memq.State) { s.ReleaseClaim(k, id, now) })
	return nil
}

func (d *driver) Expire(_ context.Context, now time.Time) (n int, err error) {
	d.write(func(s *memq.State) { n = s.Expire(now) })
	return n, nil
}

func TestStateContract(t *testing.T) {
	t.Parallel()
	for _, roundtrip := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "snapshot-every-write"}[roundtrip]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			queuetest.Run(t, func(t *testing.T) queue.Driver {
				return &driver{t: t, roundtrip: roundtrip, s: memq.New()}
			})
		})
	}
}

// TestMessageIDs: ids sort as strings in seq order and parse back;
// anything else parses as 0.
func TestMessageIDs(t *testing.T) {
	t.Parallel()
	prev := ""
	for _, seq := range []uint64{1, 2, 15, 16, 255, 256, 1 << 40, 1<<64 - 1} {
		id := memq.MessageID(seq)
		if id <= prev || memq.ParseMessageID(id) != seq {
			t.Fatalf("seq %d: id %q (previous %q) parses to %d", seq, id, prev, memq.ParseMessageID(id))
		}
		prev = id
	}
	for _, bad := range []string{"", "1", "zzzzzzzzzzzzzzzz", "00000000000000011"} {
		if got := memq.ParseMessageID(bad); got != 0 {
			t.Fatalf("ParseMessageID(%q) = %d", bad, got)
		}
	}
}

// TestMessageIDsOfAPost: the ids of a post, formatted together, are
// each seq's own id, past the stack buffer's 16 too.
func TestMessageIDsOfAPost(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 10, 16, 17, 1000} {
		first := uint64(1<<40 - 5)
		ids := memq.MessageIDs(first, n)
		if len(ids) != n {
			t.Fatalf("n %d: %d ids", n, len(ids))
		}
		for i, id := range ids {
			if want := memq.MessageID(first + uint64(i)); id != want {
				t.Fatalf("n %d: ids[%d] = %q, want %q", n, i, id, want)
			}
		}
	}
}

// TestWritesNeverGoBackInTime: a claim that found a message expired
// leaves it expired for a later write with an earlier now (clocks of
// proposers differ), on the State and on one restored from its snapshot
// alike, so nodes that restored at different points still agree.
func TestWritesNeverGoBackInTime(t *testing.T) {
	t.Parallel()
	k := queue.Key{Tenant: "t", Queue: "q"}
	at := func(sec int) time.Time { return queuetest.T0.Add(time.Duration(sec) * time.Second) }
	s := memq.New()
	s.PostMessages(k, uuid.MustParse(queuetest.ClientA), []queue.NewMessage{{Body: json.RawMessage(`1`), TTL: time.Minute}}, at(0))
	if c := s.CreateClaim(k, uuid.New(), queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(61)); c.ID != "" {
		t.Fatalf("claimed an expired message: %+v", c)
	}
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := memq.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*memq.State{"original": s, "restored": restored} {
		if c := st.CreateClaim(k, uuid.New(), queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(30)); c.ID != "" {
			t.Fatalf("%s: a claim with an earlier now got the expired message: %+v", name, c)
		}
	}
}
