package natsbus

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
)

// A stream leader that stored messages may die before republishing them:
// when the stream elects a leader, every watched user is brought up to
// date from JetStream. Here the watch's live feed is cut so only that
// resync can deliver.
func TestTrackerResyncsWhenLeaderElected(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc := natstest.RunCluster(t, 3)[1].Connect(t)
	// No position check within the test: only the resync may deliver.
	l, tr := newTrackerLog(ctx, t, nc, TrackerOptions{Replicas: 3, PositionCheck: time.Hour})
	st, err := tr.Stream(ctx, "lena")
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.FromNow())
	defer sub.Close()

	l.watches[tracker.StreamName("lena")].unsubscribe() // the live feed is lost
	for i := range 2 {
		if _, err := tr.Publish(ctx, "lena", json.RawMessage(`{"i":1}`)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if h := st.Head(); h != 0 {
		t.Fatalf("head %d before the election, want 0 (nothing delivered)", h)
	}
	// This connection watches the advisories too, so that a failure tells
	// an election never announced from a resync that did not deliver.
	adv, err := nc.SubscribeSync(trackElected)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	was := leaderOf(t, l)
	reply, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+trackStream, nil)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Success bool            `json:"success"`
		Error   json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil || !resp.Success {
		t.Fatalf("leader step-down refused: %s", reply.Data)
	}
	var got []uint64
	for len(got) < 2 {
		evs, err := sub.Next(ctx, nil)
		if err != nil {
			seen, _, _ := adv.Pending()
			t.Fatalf("no resync delivered seqs 1 2 after the leader (%s) stepped down: got %v, %v; "+
				"election advisories this connection received: %d; leader now %q", was, got, err, seen, leaderOf(t, l))
		}
		for _, e := range evs {
			got = append(got, e.Seq)
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("after the election got seqs %v, want 1 2", got)
	}
}

// A live event lost with nothing after it (here the watch's live feed is
// cut) still reaches the subscribers: the position check finds it in
// JetStream.
func TestTrackerPositionCheckDeliversLostLiveEvents(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, tr := newTrackerLog(ctx, t, natstest.RunServer(t).Connect(t), TrackerOptions{PositionCheck: 50 * time.Millisecond})
	st, err := tr.Stream(ctx, "mona")
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.FromNow())
	defer sub.Close()
	l.watches[tracker.StreamName("mona")].unsubscribe() // the live feed is lost
	for i := range 3 {
		if _, err := tr.Publish(ctx, "mona", json.RawMessage(`{"i":1}`)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	var got []uint64
	for len(got) < 3 {
		evs, err := sub.Next(ctx, nil)
		if err != nil {
			t.Fatalf("got seqs %v, then %v: the lost events never came", got, err)
		}
		for _, e := range evs {
			got = append(got, e.Seq)
		}
	}
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("got seqs %v, want 1 2 3", got)
	}
}

// newTrackerLog opens the tracker log on nc with o, retrying while a
// cluster cannot place its replicas yet, and a tracker on it; both are
// closed when the test ends.
func newTrackerLog(ctx context.Context, t *testing.T, nc *nats.Conn, o TrackerOptions) (*TrackerLog, *tracker.Tracker) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(memstore.New(), slog.New(slog.DiscardHandler), stream.HubOptions{})
	t.Cleanup(func() { _ = hub.Close(context.Background()) })
	var l *TrackerLog
	for i := 0; i < 100 && ctx.Err() == nil; i++ {
		if l, err = NewTrackerLog(ctx, js, nc, hub, o); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, tracker.NewWith(l, tracker.Options{})
}

// leaderOf names the tracker stream's leader ("" during an election, or
// the error reading it): for failure messages.
func leaderOf(t *testing.T, l *TrackerLog) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), trackOpTimeout)
	defer cancel()
	info, err := l.st.Info(ctx)
	if err != nil {
		return err.Error()
	}
	if info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}
