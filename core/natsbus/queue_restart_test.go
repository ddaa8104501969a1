package natsbus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

var qk = queue.Key{Tenant: "t", Queue: "q"}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func postN(t *testing.T, d queue.Driver, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		got, err := d.PostMessages(tctx(t), qk, queuetest.ClientA,
			[]queue.NewMessage{{Body: json.RawMessage(fmt.Sprint(i)), TTL: time.Hour}}, queuetest.T0)
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		ids = append(ids, got...)
	}
	return ids
}

// listAll returns every message of qk (claimed ones too) as body→claim.
func listAll(t *testing.T, d queue.Driver) map[string]string {
	t.Helper()
	out, err := listErr(t, d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listErr(t *testing.T, d queue.Driver) (map[string]string, error) {
	out := map[string]string{}
	o := queue.ListOptions{Limit: 100, Echo: true, IncludeClaimed: true}
	for range 100 {
		p, err := d.ListMessages(tctx(t), qk, o, queuetest.T0)
		if err != nil || len(p.Messages) == 0 {
			return out, err
		}
		for _, m := range p.Messages {
			out[string(m.Body)] = m.ClaimID
		}
		o.Marker = p.Marker
	}
	return out, nil
}

func firstSeq(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(tctx(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.FirstSeq
}

// TestQueueDriverRestart: a driver that restarts (a new instance on a new
// connection) sees every acknowledged post, delete, claim and metadata
// change, from the snapshot the log was purged to plus the log after it,
// and keeps assigning ids after the old ones.
func TestQueueDriverRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	o := logOptions(1)
	o.SnapshotEvery = 7
	d1, close1 := startDriver(t, srv, o)
	if err := d1.SetQueueMetadata(tctx(t), qk, json.RawMessage(`{}`)); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Fatalf("metadata of a missing queue: %v", err)
	}
	ids := postN(t, d1, 0, 40)
	if err := d1.SetQueueMetadata(tctx(t), qk, json.RawMessage(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	c, err := d1.CreateClaim(tctx(t), qk, queue.ClaimOptions{TTL: time.Hour, Limit: 3}, queuetest.T0)
	if err != nil || len(c.Messages) != 3 {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if err := d1.DeleteMessages(tctx(t), qk, ids[10:30], nil, queuetest.T0); err != nil {
		t.Fatal(err)
	}
	want := listAll(t, d1)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) for a snapshot to be stored and the log purged to it.
	for i := 0; firstSeq(t, js, o.Stream) == 1; i++ {
		if i == 100 {
			t.Fatal("the log was never purged to a snapshot")
		}
		time.Sleep(50 * time.Millisecond)
	}
	close1()

	d2 := openDriver(t, srv, o)
	if got := listAll(t, d2); !maps.Equal(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	if meta, err := d2.QueueMetadata(tctx(t), qk); err != nil || string(meta) != `{"x":1}` {
		t.Fatalf("metadata after restart: %s %v", meta, err)
	}
	if err := d2.DeleteMessages(tctx(t), qk, ids[:1], nil, queuetest.T0); !errors.Is(err, queue.ErrClaimed) {
		t.Fatalf("claimed message after restart: %v", err)
	}
	if err := d2.DeleteMessages(tctx(t), qk, ids[:3], []string{c.ID}, queuetest.T0); err != nil {
		t.Fatalf("delete with the claim made before the restart: %v", err)
	}
	more := postN(t, d2, 100, 1)
	if more[0] <= ids[len(ids)-1] {
		t.Fatalf("id %s after restart is not after %s", more[0], ids[len(ids)-1])
	}
}

// TestQueueDriverNodeKilled: three nodes, R3. Writes acknowledged through
// a node whose server is then killed are all there on the others; the
// survivors keep serving (a quorum is left), and a driver restarted on a
// survivor catches up with everything.
func TestQueueDriverNodeKilled(t *testing.T) {
	t.Parallel()
	nodes := natstest.RunCluster(t, 3)
	o := logOptions(3)
	a := openDriver(t, nodes[0], o)
	b := openDriver(t, nodes[1], o)
	c := openDriver(t, nodes[2], o)
	ids := postN(t, a, 0, 20)
	cl, err := b.CreateClaim(tctx(t), qk, queue.ClaimOptions{TTL: time.Hour, Limit: 5}, queuetest.T0)
	if err != nil || len(cl.Messages) != 5 {
		t.Fatalf("claim on b: %+v %v", cl, err)
	}
	if err := a.DeleteMessages(tctx(t), qk, ids[5:10], nil, queuetest.T0); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMessages(tctx(t), qk, ids[:5], nil, queuetest.T0); !errors.Is(err, queue.ErrClaimed) {
		t.Fatalf("c deletes b's claimed messages without the claim: %v", err)
	}
	want := listAll(t, c)
	if len(want) != 15 {
		t.Fatalf("c lists %d messages, want 15", len(want))
	}
	nodes[0].Shutdown()

	got := retryList(t, b)
	if !maps.Equal(got, want) {
		t.Fatalf("after node 1 died, b lists %v, want %v", got, want)
	}
	if err := retry(t, func() error { return c.DeleteMessages(tctx(t), qk, ids[:5], []string{cl.ID}, queuetest.T0) }); err != nil {
		t.Fatalf("c deletes with b's claim: %v", err)
	}
	postN(t, b, 100, 3)
	d := openDriver(t, nodes[2], o) // c's node, a new driver instance
	// As a client would, it retries while the log elects leaders after
	// the kill: a loaded machine can take longer than one request's
	// Timeout to settle them.
	got = retryList(t, d)
	wantBodies := []string{"10", "100", "101", "102", "11", "12", "13", "14", "15", "16", "17", "18", "19"}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, slices.Sorted(slices.Values(wantBodies))) {
		t.Fatalf("restarted driver lists %v, want %v", keys, wantBodies)
	}
}

// retry runs fn until it passes or a bounded number of tries (a leader
// election after a node died makes the log unavailable for a moment).
func retry(t *testing.T, fn func() error) error {
	t.Helper()
	var err error
	for range 40 {
		if err = fn(); err == nil || !errors.Is(err, queue.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

func retryList(t *testing.T, d queue.Driver) map[string]string {
	t.Helper()
	var out map[string]string
	err := retry(t, func() error {
		var err error
		out, err = listErr(t, d)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestQueueDriverCatchesUpPastPurge: a node down while the log moves on
// and is purged past its position (snapshots every 5 entries) comes back
// (same store, same ports); its driver finds the gap, loads the snapshot
// and catches up by itself.
func TestQueueDriverCatchesUpPastPurge(t *testing.T) {
	t.Parallel()
	nodes := natstest.RunCluster(t, 3)
	o := logOptions(3)
	o.SnapshotEvery = 5
	ao, alogs := o, &lockedBuffer{}
	ao.Log = slog.New(slog.NewTextHandler(alogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := openDriver(t, nodes[0], ao)
	co := o
	logs := &lockedBuffer{}
	co.Log = slog.New(slog.NewTextHandler(logs, nil))
	// c's connection goes only to its own node, so it waits for it, and
	// only once that node holds the purge itself: a consumer reading
	// from a replica still replaying its raft log would find the
	// entries there, and never meet the purge. Until then it retries a
	// port nobody listens on.
	spare := fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePorts(t, 1)[0])
	purged := make(chan struct{})
	cnc, err := nats.Connect(nodes[2].ClientURL()+","+spare, nats.DontRandomize(), nats.IgnoreDiscoveredServers(),
		nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1), reconnectOnceClosed(spare, purged))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cnc.Close)
	c, closeC := startDriverConn(t, nodes[2], co, cnc)
	defer closeC()
	postN(t, a, 0, 3)
	if got := listAll(t, c); len(got) != 3 {
		t.Fatalf("c lists %v", got)
	}
	restart := stopNode(t, nodes, 2)
	retryList(t, a) // a leader for the log again
	js, err := jetstream.New(nodes[0].Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	// Post until the log is purged past c's position: a snapshot fails
	// while the snapshot stores elect new leaders, and the next one comes
	// 5 entries later. Leader elections take seconds: bounded at 30 s.
	posted := 3
	deadline := time.Now().Add(30 * time.Second)
	const purgedTo = 10 // c applied 3
	for firstSeq(t, js, o.Stream) < purgedTo {
		if time.Now().After(deadline) {
			t.Fatalf("the log was never purged to a snapshot:\n%s", alogs.String())
		}
		postN(t, a, posted, 5)
		posted += 5
		time.Sleep(50 * time.Millisecond)
	}
	waitFirstSeq(t, restart(), o.Stream, purgedTo)
	close(purged)
	if got := retryList(t, c); len(got) != posted {
		t.Fatalf("c lists %d messages after catching up, want %d", len(got), posted)
	}
	if !strings.Contains(logs.String(), "loading the snapshot") {
		t.Fatalf("c caught up without meeting the purge (the test proves nothing):\n%s", logs.String())
	}
	ids := postN(t, c, 100, 1)
	if got := listAll(t, a); got["100"] != "" || len(got) != posted+1 {
		t.Fatalf("a lists %d messages (want %d) after c posted %v", len(got), posted+1, ids)
	}
}

// stopNode shuts node i down and returns a function that starts it again
// with the same name, store and ports, routed to the others.
func stopNode(t *testing.T, nodes []*natstest.Server, i int) (restart func() *server.Server) {
	t.Helper()
	old := nodes[i]
	client, cluster := old.Addr().(*net.TCPAddr).Port, old.ClusterAddr().Port
	var routes []*url.URL
	for j, n := range nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: n.ClusterAddr().String()})
		}
	}
	old.Shutdown()
	old.WaitForShutdown()
	return func() *server.Server {
		t.Helper()
		ns, err := server.NewServer(&server.Options{
			ServerName: old.Name, Host: "127.0.0.1", Port: client,
			JetStream: true, StoreDir: old.StoreDir, NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: cluster},
			Routes:  routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("restarted node not ready")
		}
		// A server shut down while it still recovers its raft groups leaves
		// their logs' goroutines behind: let it finish first.
		for i := 0; !ns.JetStreamIsCurrent(); i++ {
			if i == 200 {
				t.Fatal("restarted node never caught up with the cluster")
			}
			time.Sleep(50 * time.Millisecond)
		}
		return ns
	}
}

// waitFirstSeq waits until srv's own replica of stream starts at first or
// later, within 30 s.
func waitFirstSeq(t *testing.T, srv *server.Server, stream string, first uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, acc := range jsz.AccountDetails {
			for _, st := range acc.Streams {
				if st.Name == stream && st.State.FirstSeq >= first {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's replica of %s never started at %d or later", srv.Name(), stream, first)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
