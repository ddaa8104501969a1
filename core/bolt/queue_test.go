package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

func openQueues(t *testing.T, path string) (*Store, *QueueDriver) {
	t.Helper()
	s, err := Open(context.Background(), path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	d, err := s.Queues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func TestQueueDriverContract(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T) queue.Driver {
		_, d := openQueues(t, filepath.Join(t.TempDir(), "q.db"))
		return d
	})
}

// TestQueueReopen: posts and deletes survive closing the file; a claim
// survives once flushed (Expire), and a claim lost before its flush only
// frees its message again (redelivery), never brings back a deleted one.
func TestQueueReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, d := openQueues(t, path)
	k := queue.Key{Tenant: "t", Queue: "q"}
	now := queuetest.T0
	var msgs []queue.NewMessage
	for _, b := range []string{`1`, `2`, `3`, `4`} {
		msgs = append(msgs, queue.NewMessage{Body: json.RawMessage(b), TTL: time.Hour})
	}
	ids, err := d.PostMessages(ctx, k, queuetest.ClientA, msgs, now)
	if err != nil {
		t.Fatal(err)
	}
	claim := func() queue.Claim {
		t.Helper()
		c, err := d.CreateClaim(ctx, k, queue.ClaimOptions{TTL: time.Hour, Limit: 1}, now)
		if err != nil || len(c.Messages) != 1 {
			t.Fatal(c, err)
		}
		return c
	}
	flushed := claim()
	for range 2 { // the second sweep that sees a claim flushes it
		if _, err := d.Expire(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	lost := claim() // never flushed: as if the process crashed
	if err := d.DeleteMessages(ctx, k, ids[2:3], nil, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, d = openQueues(t, path)
	p, err := d.ListMessages(ctx, k, queue.ListOptions{Limit: 10, Echo: true, IncludeClaimed: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 3 || string(p.Messages[0].Body) != "1" || p.Messages[0].ClaimID != flushed.ID ||
		string(p.Messages[1].Body) != "2" || p.Messages[1].ClaimID != "" || string(p.Messages[2].Body) != "4" {
		t.Fatalf("after reopen: %+v", p.Messages)
	}
	if err := d.DeleteMessages(ctx, k, ids[1:2], []string{lost.ID}, now); !errors.Is(err, queue.ErrNotClaimedBy) {
		t.Fatalf("delete with the lost claim: %v", err)
	}
	again, err := d.CreateClaim(ctx, k, queue.ClaimOptions{TTL: time.Hour, Limit: 10}, now)
	if err != nil || len(again.Messages) != 2 || again.Messages[0].ID != ids[1] || again.Messages[1].ID != ids[3] {
		t.Fatalf("claim after reopen: %+v %v", again.Messages, err)
	}
	if err := d.DeleteMessages(ctx, k, ids[:1], []string{flushed.ID}, now); err != nil {
		t.Fatalf("delete with the flushed claim: %v", err)
	}
	more, err := d.PostMessages(ctx, k, queuetest.ClientA, []queue.NewMessage{{Body: json.RawMessage(`5`), TTL: time.Hour}}, now)
	if err != nil || more[0] <= ids[3] {
		t.Fatalf("id after reopen %v (last before %s): %v", more, ids[3], err)
	}
}

// TestSeqCursor holds the cursor lookups to Bucket.Get and Delete: the
// Next shortcut must not skip or invent seqs around gaps, the end of the
// bucket, lookups out of order, or after a delete.
func TestSeqCursor(t *testing.T) {
	t.Parallel()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := map[uint64]bool{1: true, 2: true, 3: true, 5: true, 7: true, 300: true}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("m"))
		if err != nil {
			return err
		}
		for seq := range stored {
			k := seqKey(seq)
			if err := b.Put(k[:], []byte{byte(seq)}); err != nil {
				return err
			}
		}
		sc := newSeqCursor(b, nil)
		for _, seq := range []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 300, 301, 2, 1, 5, 6, 299, 300} {
			v, ok := sc.get(seq)
			if ok != stored[seq] || (ok && v[0] != byte(seq)) {
				t.Errorf("get(%d) = %v, %v; stored: %v", seq, v, ok, stored[seq])
			}
		}
		for _, seq := range []uint64{2, 4, 3, 300} {
			if err := sc.del(seq); err != nil {
				return err
			}
			delete(stored, seq)
		}
		for _, seq := range []uint64{1, 2, 3, 4, 5, 6, 7, 300} {
			if _, ok := sc.get(seq); ok != stored[seq] {
				t.Errorf("after deletes: get(%d) found %v, want %v", seq, ok, stored[seq])
			}
			k := seqKey(seq)
			if got := b.Get(k[:]) != nil; got != stored[seq] {
				t.Errorf("after deletes: Bucket.Get(%d) found %v, want %v", seq, got, stored[seq])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
