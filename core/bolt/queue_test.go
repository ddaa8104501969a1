package bolt

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

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

// TestQueueReopen: posts, claims and deletes survive closing the file.
func TestQueueReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, d := openQueues(t, path)
	k := queue.Key{Tenant: "t", Queue: "q"}
	now := queuetest.T0
	ids, err := d.PostMessages(ctx, k, queuetest.ClientA, []queue.NewMessage{
		{Body: json.RawMessage(`1`), TTL: time.Hour}, {Body: json.RawMessage(`2`), TTL: time.Hour}, {Body: json.RawMessage(`3`), TTL: time.Hour},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.CreateClaim(ctx, k, queue.ClaimOptions{TTL: time.Hour, Limit: 1}, now)
	if err != nil || len(c.Messages) != 1 {
		t.Fatal(c, err)
	}
	if err := d.DeleteMessages(ctx, k, ids[1:2], nil, now); err != nil {
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
	if len(p.Messages) != 2 || string(p.Messages[0].Body) != "1" || p.Messages[0].ClaimID != c.ID || string(p.Messages[1].Body) != "3" {
		t.Fatalf("after reopen: %+v", p.Messages)
	}
	more, err := d.PostMessages(ctx, k, queuetest.ClientA, []queue.NewMessage{{Body: json.RawMessage(`4`), TTL: time.Hour}}, now)
	if err != nil || more[0] <= ids[2] {
		t.Fatalf("id after reopen %v (last before %s): %v", more, ids[2], err)
	}
}
