package natsbus

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
)

func startNodes(t *testing.T, s *natstest.Server, name string) *Nodes {
	t.Helper()
	return startNodesEvery(t, s, name, 50*time.Millisecond)
}

func startNodesEvery(t *testing.T, s *natstest.Server, name string, interval time.Duration) *Nodes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := StartNodes(ctx, s.Connect(t), testJS(t, s), cluster.Node{Name: name, Started: time.Now()},
		NodesOptions{Interval: interval}, slog.New(slog.DiscardHandler))
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
	// Watchers are called after the state changed, outside its lock:
	// the calls may still be on their way.
	var sawUp, sawDown bool
	for timeout := time.After(10 * time.Second); !sawUp || !sawDown; {
		select {
		case n := <-changes:
			sawUp = sawUp || (n.Name == "b" && n.Up)
			sawDown = sawDown || (n.Name == "b" && !n.Up)
		case <-timeout:
			t.Fatalf("watcher saw up %v down %v", sawUp, sawDown)
		}
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

// A peer whose last heartbeat came before this node started listening
// (both were starting; then it died) is down once silent for three
// heartbeats like any other: watchers are told, so the mirrors of its
// streams go offline. It was never seen up here, so without this it
// would stay listed as not up and nobody would ever be told.
func TestNodesPeerUnheardSinceStartGoesDown(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	heard := make(chan struct{}, 1)
	watch, err := srv.Connect(t).Subscribe(subjectHeartbeat, func(*nats.Msg) {
		select {
		case heard <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// b records itself and beats once as it starts, then (as if killed)
	// not again within the test.
	b := startNodesEvery(t, srv, "b", time.Hour)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	select {
	case <-heard: // b's one heartbeat is delivered: a cannot hear it
	case <-time.After(10 * time.Second):
		t.Fatal("b's heartbeat never came")
	}
	_ = watch.Unsubscribe()

	a := startNodesEvery(t, srv, "a", 200*time.Millisecond)
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	changes := make(chan cluster.Node, 16)
	defer a.Watch(func(n cluster.Node) { changes <- n })()
	if !a.Known("b") || a.Up("b") {
		t.Fatalf("a at start: knows b %v, b up %v", a.Known("b"), a.Up("b"))
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-changes:
			if n.Name == "b" && !n.Up {
				return
			}
		case <-deadline:
			t.Fatal("a never told its watchers that b, silent since a started, is down")
		}
	}
}

// An owner a node learns of before any record or heartbeat of it arrived
// (a mirror of its stream is opened) is expected: silent for three
// heartbeats from then, it is down and watchers are told. Expecting a
// node already known changes nothing.
func TestNodesExpectedOwnerSilentGoesDown(t *testing.T) {
	t.Parallel()
	const iv = time.Second
	now := time.Now()
	n := &Nodes{self: cluster.Node{Name: "self"}, opts: NodesOptions{Interval: iv},
		log: slog.New(slog.DiscardHandler), watchers: map[int]func(cluster.Node){}, unheard: map[string]time.Time{},
		nodes: map[string]*cluster.Node{
			"self": {Name: "self", Up: true, LastSeen: now},
			"up":   {Name: "up", Up: true, LastSeen: now},
		}}
	var told []cluster.Node
	n.watchers[0] = func(c cluster.Node) { told = append(told, c) }
	n.Expect("owner")
	n.Expect("up")
	if !n.Known("owner") || n.Up("owner") || !n.Up("up") {
		t.Fatalf("after Expect: known owner %v, owner up %v, up up %v", n.Known("owner"), n.Up("owner"), n.Up("up"))
	}
	n.expire(now.Add(2*iv), true)
	if len(told) != 0 {
		t.Fatalf("told %+v after two heartbeats", told)
	}
	// Our own heartbeats kept coming; the owner's never did.
	n.nodes["self"].LastSeen = now.Add(4 * iv)
	n.nodes["up"].LastSeen = now.Add(4 * iv)
	n.expire(now.Add(4*iv), true)
	if len(told) != 1 || told[0].Name != "owner" || told[0].Up {
		t.Fatalf("watchers told %+v, want owner down", told)
	}
	n.expire(now.Add(8*iv), false)
	if len(told) != 2 || told[1].Name != "up" {
		t.Fatalf("watchers told %+v, want owner down once, then up's silence", told)
	}
}
