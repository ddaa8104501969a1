package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/natsbus"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
)

// trackGuard bounds every blocking step of these tests (a hang guard,
// never a speed assertion): leader elections after a node dies take a few
// seconds.
const trackGuard = 30 * time.Second

func trackCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), trackGuard)
	t.Cleanup(cancel)
	return ctx
}

// trackNode is one sidestream node's tracker: its own connection, hub
// and TrackerLog.
type trackNode struct {
	nc  *nats.Conn
	hub *stream.Hub
	log *natsbus.TrackerLog
	tr  *tracker.Tracker
}

// newTrackNode connects to srv and builds a tracker whose streams keep a
// small ring (4), so history reads go to JetStream early.
func newTrackNode(t testing.TB, srv *natstest.Server, replicas int, opts ...nats.Option) *trackNode {
	t.Helper()
	o := natsbus.TrackerOptions{Replicas: replicas, MaxEvents: 1000, MaxAge: time.Hour}
	return newTrackNodeWith(t, srv, o, stream.HubOptions{}, opts...)
}

func newTrackNodeWith(t testing.TB, srv *natstest.Server, o natsbus.TrackerOptions, ho stream.HubOptions, opts ...nats.Option) *trackNode {
	t.Helper()
	opts = append([]nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.MaxReconnects(-1)}, opts...)
	nc := srv.Connect(t, opts...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(memstore.New(), slog.New(slog.DiscardHandler), ho)
	ctx := trackCtx(t)
	var tl *natsbus.TrackerLog
	for i := 0; ; i++ { // a cluster just formed may not place replicas yet
		tl, err = natsbus.NewTrackerLog(ctx, js, nc, hub, o)
		if err == nil || i == 50 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("tracker log on %s: %v", srv.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), trackGuard)
		defer cancel()
		if err := tl.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := hub.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return &trackNode{nc: nc, hub: hub, log: tl, tr: tracker.NewWith(tl, tracker.Options{RingSize: 4})}
}

func trackNodes(t testing.TB, servers []*natstest.Server) []*trackNode {
	nodes := make([]*trackNode, len(servers))
	for i, s := range servers {
		nodes[i] = newTrackNode(t, s, len(servers))
	}
	return nodes
}

// subscribe opens user's stream on n and subscribes at pos, retrying
// while JetStream is unavailable (a leader election) as a client would.
func (n *trackNode) subscribe(t testing.TB, user string, pos stream.Position) *stream.Subscription {
	t.Helper()
	var st *stream.Stream
	err := retryUnavailable(t, func(ctx context.Context) (err error) {
		st, err = n.tr.Stream(ctx, user)
		return err
	})
	if err != nil {
		t.Fatalf("stream %s: %v", user, err)
	}
	sub := st.Subscribe(pos)
	t.Cleanup(sub.Close)
	return sub
}

// publish publishes {"n":i} for each i in ns and returns the seqs.
func (n *trackNode) publish(t testing.TB, user string, ns ...int) []uint64 {
	t.Helper()
	var out []uint64
	for _, i := range ns {
		seq, err := n.tr.Publish(trackCtx(t), user, json.RawMessage(fmt.Sprintf(`{ "n" : %d }`, i)))
		if err != nil {
			t.Fatalf("publish %d to %s: %v", i, user, err)
		}
		out = append(out, seq)
	}
	return out
}

// read reads from sub until it holds n events (control markers counted).
func read(t testing.TB, sub *stream.Subscription, n int) []*event.Event {
	t.Helper()
	ctx := trackCtx(t)
	var got []*event.Event
	for i := 0; len(got) < n && i < n+20; i++ {
		var err error
		if got, err = sub.Next(ctx, got); err != nil {
			t.Fatalf("next after %d events: %v", len(got), err)
		}
	}
	if len(got) != n {
		t.Fatalf("read %d events, want %d: %v", len(got), n, describe(got))
	}
	return got
}

// retryUnavailable calls fn with a short deadline until it succeeds or
// fails otherwise than unavailable, within trackGuard.
func retryUnavailable(t testing.TB, fn func(ctx context.Context) error) error {
	t.Helper()
	deadline := time.Now().Add(trackGuard)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil || !errors.Is(err, stream.ErrStoreUnavailable) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%d:%s:%s", e.Seq, e.Type, e.Data)
	}
	return out
}

// wantSeqs checks evs are tracker events with seqs from..to whose data is
// {"n":data(seq)}.
func wantSeqs(t testing.TB, evs []*event.Event, from, to uint64, data func(seq uint64) int) {
	t.Helper()
	if uint64(len(evs)) != to-from+1 {
		t.Fatalf("got %v, want seqs %d..%d", describe(evs), from, to)
	}
	for i, e := range evs {
		want := fmt.Sprintf(`{"n":%d}`, data(from+uint64(i)))
		if e.Seq != from+uint64(i) || e.Type != tracker.EventType || string(e.Data) != want || e.Time.IsZero() {
			t.Fatalf("event %d is %s, want seq %d data %s (all %v)", i, describe(evs[i:i+1]), from+uint64(i), want, describe(evs))
		}
	}
}

func same(seq uint64) int { return int(seq) }

// Published on node 1, seen with the same seqs and data on nodes 2 and 3,
// including a user whose name holds dots.
func TestTrackerFanOutAcrossNodes(t *testing.T) {
	t.Parallel()
	nodes := trackNodes(t, natstest.RunCluster(t, 3))
	for _, user := range []string{"alice", "a.b-c_d"} {
		s2 := nodes[1].subscribe(t, user, stream.FromNow())
		s3 := nodes[2].subscribe(t, user, stream.FromNow())
		ns := make([]int, 12)
		for i := range ns {
			ns[i] = i + 1
		}
		if seqs := nodes[0].publish(t, user, ns...); !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
			t.Fatalf("%s: publish seqs %v, want 1..12", user, seqs)
		}
		got2, got3 := read(t, s2, 12), read(t, s3, 12)
		wantSeqs(t, got2, 1, 12, same)
		wantSeqs(t, got3, 1, 12, same)
		if got2[0].Stream != tracker.StreamName(user) || !got2[0].Time.Equal(got3[0].Time) {
			t.Fatalf("%s: stream %q, times %v / %v", user, got2[0].Stream, got2[0].Time, got3[0].Time)
		}
	}
}

// Three nodes publishing to one user at once give one gap-free sequence:
// every seq handed out once, every subscriber sees them all in order.
func TestTrackerConcurrentPublishersOneSequence(t *testing.T) {
	t.Parallel()
	nodes := trackNodes(t, natstest.RunCluster(t, 3))
	sub := nodes[1].subscribe(t, "bob", stream.FromNow())
	const perWriter, writersPerNode = 10, 2
	var (
		mu   sync.Mutex
		seqs = map[uint64]int{}
		wg   sync.WaitGroup
		errs = make(chan error, len(nodes)*writersPerNode)
	)
	for ni, n := range nodes {
		for w := range writersPerNode {
			wg.Go(func() {
				for i := range perWriter {
					v := (ni*writersPerNode+w)*perWriter + i
					seq, err := n.tr.Publish(trackCtx(t), "bob", json.RawMessage(fmt.Sprint(`{"n":`, v, `}`)))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					seqs[seq] = v
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := len(nodes) * writersPerNode * perWriter
	if len(seqs) != total {
		t.Fatalf("%d distinct seqs for %d publishes", len(seqs), total)
	}
	got := read(t, sub, total)
	wantSeqs(t, got, 1, uint64(total), func(seq uint64) int { return seqs[seq] })
}

// A client that read up to seq N on one node and resumes after N on
// another gets N+1… exactly, even right after the publish, from the ring
// or from JetStream history past it; pages read the same history.
func TestTrackerResumeOnAnotherNode(t *testing.T) {
	t.Parallel()
	nodes := trackNodes(t, natstest.RunCluster(t, 3))
	first := nodes[1].subscribe(t, "carol", stream.FromNow())
	nodes[2].subscribe(t, "carol", stream.FromNow()) // node 3 already watches
	nodes[0].publish(t, "carol", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	wantSeqs(t, read(t, first, 6)[:6], 1, 6, same)

	for _, tc := range []struct {
		node  int
		after uint64
	}{{2, 6}, {2, 1}, {0, 0}, {0, 9}} {
		sub := nodes[tc.node].subscribe(t, "carol", stream.After(tc.after))
		wantSeqs(t, read(t, sub, int(10-tc.after)), tc.after+1, 10, same)
	}

	// Resume right after the acknowledged publish, on a node that only
	// learns of it through the republished message.
	for i := range 5 {
		seq := nodes[0].publish(t, "carol", 11+i)[0]
		sub := nodes[2].subscribe(t, "carol", stream.After(seq))
		nodes[1].publish(t, "carol", 12+i)
		got := read(t, sub, 1)
		if got[0].Seq != seq+1 {
			t.Fatalf("resumed after %d, got %v first", seq, describe(got))
		}
		sub.Close()
		nodes[2].publish(t, "carol") // nothing: keep the data pattern below
	}

	st, err := nodes[2].tr.Stream(trackCtx(t), "carol")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after, before uint64
		limit         int
		want          []uint64
	}{
		{after: 0, limit: 3, want: []uint64{1, 2, 3}},
		{after: 2, limit: 20, want: []uint64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}},
		{before: 5, limit: 3, want: []uint64{2, 3, 4}},
		{before: 3, limit: 9, want: []uint64{1, 2}},
	} {
		var page []*event.Event
		if tc.before != 0 {
			page, err = st.ReadBefore(trackCtx(t), tc.before, tc.limit)
		} else {
			page, err = st.ReadAfter(trackCtx(t), tc.after, tc.limit)
		}
		var got []uint64
		for _, e := range page {
			got = append(got, e.Seq)
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Fatalf("page after %d before %d limit %d: %v %v, want %v", tc.after, tc.before, tc.limit, got, err, tc.want)
		}
	}
}

// A node dies right after its acknowledged publishes: the other nodes
// lose nothing, a watcher whose connection went through the dead node
// is told it is offline and then resumes with nothing lost, and the
// sequence continues from any node.
func TestTrackerNodeKilledLosesNothing(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	nodes := trackNodes(t, servers)
	// The watcher's connection goes through n1 too. It reconnects only
	// once the test has seen it offline: a reconnect within milliseconds
	// (it has two live servers to go to) would otherwise bring the stream
	// back online, with nothing missed, before a loaded machine ran the
	// reader, and the offline marker is only given while offline.
	seen := make(chan struct{})
	watcher := newTrackNode(t, servers[0], 3, reconnectOnceClosed(servers[0].ClientURL(), seen))
	wsub := watcher.subscribe(t, "dave", stream.FromNow())
	nodes[0].publish(t, "dave", 1, 2, 3, 4, 5)
	wantSeqs(t, read(t, wsub, 5), 1, 5, same)

	servers[0].Shutdown() // kill -9 of node 1: its server, its connections
	nodes[0].nc.Close()

	off := read(t, wsub, 1)
	if off[0].Type != event.TypeOffline || off[0].Seq != 5 {
		t.Fatalf("watcher got %v, want an offline marker at seq 5", describe(off))
	}
	close(seen)
	// The stream may elect a new leader first: retry as a client would.
	var seq uint64
	err := retryUnavailable(t, func(ctx context.Context) (err error) {
		seq, err = nodes[2].tr.Publish(ctx, "dave", json.RawMessage(`{"n":6}`))
		return err
	})
	if err != nil || seq != 6 {
		t.Fatalf("publish after the kill: seq %d, %v", seq, err)
	}
	for _, n := range nodes[1:] {
		wantSeqs(t, read(t, n.subscribe(t, "dave", stream.After(0)), 6), 1, 6, same)
	}
	wantSeqs(t, read(t, wsub, 1), 6, 6, same)
}

// reconnectOnceClosed makes a connection retry only the dead server at
// URL, every 50 ms, until gate is closed, then any other.
func reconnectOnceClosed(dead string, gate <-chan struct{}) nats.Option {
	return nats.ReconnectToServer(func(pool []nats.Server, _ nats.ServerInfo) (*nats.Server, time.Duration) {
		held := true
		select {
		case <-gate:
			held = false
		default:
		}
		for i := range pool {
			if (pool[i].URL.String() == dead) == held {
				return &pool[i], 50 * time.Millisecond
			}
		}
		return nil, 0
	})
}

// History beyond MaxEvents is gone: a subscriber resuming before it gets
// a gap marker, then what is kept.
func TestTrackerMaxEventsGivesGap(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	writer := newTrackNodeWith(t, srv, natsbus.TrackerOptions{MaxEvents: 5}, stream.HubOptions{})
	writer.publish(t, "gina", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	reader := newTrackNodeWith(t, srv, natsbus.TrackerOptions{MaxEvents: 5}, stream.HubOptions{})
	got := read(t, reader.subscribe(t, "gina", stream.After(0)), 6)
	if !got[0].IsGap() || string(got[0].Data) != `{"from":1,"to":5}` {
		t.Fatalf("first event %v, want gap 1..5", describe(got[:1]))
	}
	wantSeqs(t, got[1:], 6, 10, same)
}

// Once all of a user's history aged out, its sequence restarts above
// every seq it had (never reused), and a subscriber that stayed connected
// gets the next event with no gap marker: nothing was missed.
func TestTrackerSequenceRestartsHigherAfterExpiry(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	n := newTrackNodeWith(t, srv, natsbus.TrackerOptions{MaxAge: time.Second}, stream.HubOptions{})
	sub := n.subscribe(t, "hank", stream.FromNow())
	n.publish(t, "hank", 1, 2, 3)
	n.publish(t, "ivy", 1, 2)
	wantSeqs(t, read(t, sub, 3), 1, 3, same)

	js, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(trackCtx(t), "SIDESTREAM_TRACK")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := st.GetLastMsgForSubject(trackCtx(t), "sidestream.track.hank"); errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if i == int(trackGuard/(50*time.Millisecond)) {
			t.Fatal("hank's history never aged out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	seq := n.publish(t, "hank", 99)[0]
	if seq <= 3 {
		t.Fatalf("seq after expiry %d, want above 3", seq)
	}
	got := read(t, sub, 1)
	if got[0].Seq != seq || got[0].IsControl() || string(got[0].Data) != `{"n":99}` {
		t.Fatalf("subscriber got %v, want seq %d", describe(got), seq)
	}
	if next := n.publish(t, "hank", 100)[0]; next != seq+1 {
		t.Fatalf("next seq %d, want %d", next, seq+1)
	}
}

// A user nobody watches any more is dropped by the hub and unwatched; the
// next Open watches it again, current with what was published meanwhile.
func TestTrackerIdleUserIsUnwatched(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	n := newTrackNodeWith(t, srv, natsbus.TrackerOptions{}, stream.HubOptions{ExternalIdle: 200 * time.Millisecond})
	sub := n.subscribe(t, "kim", stream.FromNow())
	n.publish(t, "kim", 1)
	wantSeqs(t, read(t, sub, 1), 1, 1, same)
	sub.Close()
	for i := 0; slices.Contains(n.hub.Names(), tracker.StreamName("kim")); i++ {
		if i == int(trackGuard/(10*time.Millisecond)) {
			t.Fatal("idle stream never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.publish(t, "kim", 2, 3)
	again := n.subscribe(t, "kim", stream.After(1))
	wantSeqs(t, read(t, again, 2), 2, 3, same)
	n.publish(t, "kim", 4)
	wantSeqs(t, read(t, again, 1), 4, 4, same)
}
