package natsbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/natsbus"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

var logN atomic.Int64

// logOptions names a fresh log, so tests sharing a server never meet.
// logOptions names a new log. Its requests get 30 s, not the driver's
// default 10 s: each test's log is a new replicated stream whose leader
// is elected while the whole package runs under -race on two cores, and
// a claim right after the first posts once took longer than 10 s.
func logOptions(replicas int) natsbus.QueueOptions {
	n := logN.Add(1)
	return natsbus.QueueOptions{Replicas: replicas, Stream: fmt.Sprintf("Q%d", n), Subject: fmt.Sprintf("q%d.ops", n),
		Timeout: 30 * time.Second}
}

// openDriver starts a driver on its own connection to srv, closed when
// the test ends.
func openDriver(t testing.TB, srv *natstest.Server, o natsbus.QueueOptions) *natsbus.QueueDriver {
	t.Helper()
	d, closeFn := startDriver(t, srv, o)
	t.Cleanup(closeFn)
	return d
}

// startDriver starts a driver on a new connection to srv; closeFn closes
// both (the connection is also closed when the test ends).
func startDriver(t testing.TB, srv *natstest.Server, o natsbus.QueueOptions) (d *natsbus.QueueDriver, closeFn func()) {
	t.Helper()
	return startDriverConn(t, srv, o, srv.Connect(t))
}

// startDriverConn is startDriver on connection nc.
func startDriverConn(t testing.TB, srv *natstest.Server, o natsbus.QueueOptions, nc *nats.Conn) (d *natsbus.QueueDriver, closeFn func()) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	o.Node = srv.Name
	if o.Log == nil { // shown if the test fails: what the driver went through
		logs := &lockedBuffer{}
		o.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("driver on %s:\n%s", srv.Name, logs.String())
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err = natsbus.NewQueueDriver(ctx, js, o)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return d, func() {
		once.Do(func() {
			// A hang guard, not a speed check: a node whose server was
			// killed may be mid-restart of its consumer, and a saturated
			// CI machine under -race stretches that.
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			if err := d.Close(ctx); err != nil {
				t.Error(err)
			}
			nc.Close()
		})
	}
}

func TestQueueDriverContract(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	queuetest.Run(t, func(t *testing.T) queue.Driver {
		return openDriver(t, srv, logOptions(1))
	})
}

// TestQueueDriverContractCluster runs the contract against three drivers
// on three nodes sharing one log (R3): every call goes to the next node,
// so a post on one node is listed, claimed and deleted through others,
// and the concurrent consumers claim on different nodes at once.
func TestQueueDriverContractCluster(t *testing.T) {
	t.Parallel()
	nodes := natstest.RunCluster(t, 3)
	queuetest.Run(t, func(t *testing.T) queue.Driver {
		o := logOptions(3) // a CI run once took over 10 s on a claim's read barrier
		s := &spread{}
		for _, n := range nodes {
			s.ds = append(s.ds, openDriver(t, n, o))
		}
		return s
	})
}

// spread is one queue.Driver over drivers on several nodes: each call
// goes to the next one in turn.
type spread struct {
	ds   []*natsbus.QueueDriver
	next atomic.Uint64
}

func (s *spread) d() queue.Driver { return s.ds[s.next.Add(1)%uint64(len(s.ds))] }

func (s *spread) CreateQueue(ctx context.Context, k queue.Key, meta json.RawMessage, now time.Time) (bool, error) {
	return s.d().CreateQueue(ctx, k, meta, now)
}
func (s *spread) QueueMetadata(ctx context.Context, k queue.Key) (json.RawMessage, error) {
	return s.d().QueueMetadata(ctx, k)
}
func (s *spread) SetQueueMetadata(ctx context.Context, k queue.Key, meta json.RawMessage) error {
	return s.d().SetQueueMetadata(ctx, k, meta)
}
func (s *spread) ListQueues(ctx context.Context, tenant, marker string, limit int) ([]queue.QueueInfo, error) {
	return s.d().ListQueues(ctx, tenant, marker, limit)
}
func (s *spread) DeleteQueue(ctx context.Context, k queue.Key) error {
	return s.d().DeleteQueue(ctx, k)
}
func (s *spread) QueueStats(ctx context.Context, k queue.Key, now time.Time) (queue.Stats, error) {
	return s.d().QueueStats(ctx, k, now)
}
func (s *spread) PostMessages(ctx context.Context, k queue.Key, clientID string, msgs []queue.NewMessage, now time.Time) ([]string, error) {
	return s.d().PostMessages(ctx, k, clientID, msgs, now)
}
func (s *spread) ListMessages(ctx context.Context, k queue.Key, o queue.ListOptions, now time.Time) (queue.Page, error) {
	return s.d().ListMessages(ctx, k, o, now)
}
func (s *spread) GetMessages(ctx context.Context, k queue.Key, ids []string, now time.Time) ([]queue.Message, error) {
	return s.d().GetMessages(ctx, k, ids, now)
}
func (s *spread) DeleteMessages(ctx context.Context, k queue.Key, ids, claimIDs []string, now time.Time) error {
	return s.d().DeleteMessages(ctx, k, ids, claimIDs, now)
}
func (s *spread) PopMessages(ctx context.Context, k queue.Key, limit int, now time.Time) ([]queue.Message, error) {
	return s.d().PopMessages(ctx, k, limit, now)
}
func (s *spread) CreateClaim(ctx context.Context, k queue.Key, o queue.ClaimOptions, now time.Time) (queue.Claim, error) {
	return s.d().CreateClaim(ctx, k, o, now)
}
func (s *spread) GetClaim(ctx context.Context, k queue.Key, id string, now time.Time) (queue.Claim, error) {
	return s.d().GetClaim(ctx, k, id, now)
}
func (s *spread) RenewClaim(ctx context.Context, k queue.Key, id string, ttl, grace time.Duration, now time.Time) error {
	return s.d().RenewClaim(ctx, k, id, ttl, grace, now)
}
func (s *spread) ReleaseClaim(ctx context.Context, k queue.Key, id string, now time.Time) error {
	return s.d().ReleaseClaim(ctx, k, id, now)
}
func (s *spread) Expire(ctx context.Context, now time.Time) (int, error) {
	return s.d().Expire(ctx, now)
}

// TestQueueDriverBodies: bodies come back byte for byte as posted, as
// the bbolt driver keeps them (whitespace, escapes and all).
func TestQueueDriverBodies(t *testing.T) {
	t.Parallel()
	d := openDriver(t, natstest.RunServer(t), logOptions(1))
	k := queue.Key{Tenant: "t", Queue: "bodies"}
	ctx := context.Background()
	bodies := []string{`{"html": "<a href=\"x\">&</a>",  "n": [1, 2]}`, `"\u00e9t\u00e9"`, "  42\n"}
	msgs := make([]queue.NewMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = queue.NewMessage{Body: json.RawMessage(b), TTL: time.Hour}
	}
	ids, err := d.PostMessages(ctx, k, queuetest.ClientA, msgs, queuetest.T0)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := d.GetMessages(ctx, k, ids, queuetest.T0)
	if err != nil || len(ms) != len(bodies) {
		t.Fatalf("get: %v %v", ms, err)
	}
	for i, m := range ms {
		if string(m.Body) != bodies[i] {
			t.Fatalf("body %q, want %q", m.Body, bodies[i])
		}
	}
}
