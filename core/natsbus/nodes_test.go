package natsbus

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
)

func startNodes(t *testing.T, s *natstest.Server, name string) *Nodes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := StartNodes(ctx, s.Connect(t), testJS(t, s), cluster.Node{Name: name, Started: time.Now()},
		NodesOptions{Interval: 50 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A node sees its peers come up, sees one go down once its heartbeats
// stop, and still lists it; watchers are told both.
func TestNodesTrackMembership(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	a := startNodes(t, srv, "a")
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	changes := make(chan cluster.Node, 16)
	cancel := a.Watch(func(n cluster.Node) { changes <- n })
	defer cancel()
	b := startNodes(t, srv, "b")
	waitFor(t, "b up", func() bool { return a.Up("b") })
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b down", func() bool { return !a.Up("b") })
	if !a.Known("b") || a.Known("c") {
		t.Fatalf("known: b %v c %v", a.Known("b"), a.Known("c"))
	}
	if l := a.List(); len(l) != 2 || l[0].Name != "a" || l[1].Name != "b" || l[1].Up {
		t.Fatalf("list: %+v", l)
	}
	var sawUp, sawDown bool
	for len(changes) > 0 {
		n := <-changes
		sawUp = sawUp || (n.Name == "b" && n.Up)
		sawDown = sawDown || (n.Name == "b" && !n.Up)
	}
	if !sawUp || !sawDown {
		t.Fatalf("watcher saw up %v down %v", sawUp, sawDown)
	}
	// A third node starting later finds b listed from the bucket.
	c := startNodes(t, srv, "c")
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	if !c.Known("b") || c.Up("b") {
		t.Fatalf("c: known b %v, up b %v", c.Known("b"), c.Up("b"))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Silence is judged against the node's own heartbeat: a peer silent while
// ours keep arriving is down (a partition, a dead peer); a peer as late
// as our own heartbeat is not (this node is too busy to read them);
// without a connection silence is silence.
func TestNodesExpireJudgesAgainstOwnHeartbeat(t *testing.T) {
	t.Parallel()
	const iv = time.Second
	t0 := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		name      string
		peerSeen  time.Duration // after t0
		selfSeen  time.Duration
		now       time.Duration
		connected bool
		wantDown  bool
	}{
		{"peer silent, ours arriving", 0, 4 * iv, 4 * iv, true, true},
		{"peer recent", 2 * iv, 4 * iv, 4 * iv, true, false},
		{"both late: we are starved", 0, 0, 6 * iv, true, false},
		{"ours barely newer", 0, iv, 6 * iv, true, false},
		{"no connection: silence is silence", 0, 0, 6 * iv, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := &Nodes{self: cluster.Node{Name: "self"}, opts: NodesOptions{Interval: iv},
				log: slog.New(slog.DiscardHandler), watchers: map[int]func(cluster.Node){},
				nodes: map[string]*cluster.Node{
					"self": {Name: "self", Up: true, LastSeen: t0.Add(tc.selfSeen)},
					"peer": {Name: "peer", Up: true, LastSeen: t0.Add(tc.peerSeen)},
				}}
			var told []cluster.Node
			n.watchers[0] = func(c cluster.Node) { told = append(told, c) }
			n.expire(t0.Add(tc.now), tc.connected)
			if down := !n.nodes["peer"].Up; down != tc.wantDown || (len(told) == 1) != tc.wantDown {
				t.Fatalf("peer down %v (watchers told %d), want down %v", down, len(told), tc.wantDown)
			}
			if !n.nodes["self"].Up {
				t.Fatal("a node judged itself down")
			}
		})
	}
}
