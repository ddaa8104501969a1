package natsbus

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/stream"
)

// streamOwner serves one local stream to the RPC (the owner node).
type streamOwner struct {
	fakeOwner
	st *stream.Stream
}

func (o streamOwner) LocalStream(id string) (*stream.Stream, error) {
	if id != o.st.Name() {
		return nil, emitter.ErrNotFound
	}
	return o.st, nil
}

func newHub(t *testing.T) *stream.Hub {
	t.Helper()
	ctx := context.Background()
	store, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "s.db"), bolt.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(store, slog.New(slog.DiscardHandler), stream.HubOptions{})
	t.Cleanup(func() { _ = hub.Close(ctx); _ = store.Close(ctx) })
	return hub
}

func publishN(t *testing.T, st *stream.Stream, n int) {
	t.Helper()
	for range n {
		data, _ := json.Marshal(map[string]uint64{"n": st.Head() + 1})
		if _, err := st.Publish(context.Background(), []event.Draft{{Type: "log", Data: data}}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// read returns the next events of sub until it holds want seqs (control
// events included), within a bound.
func read(t *testing.T, sub *stream.Subscription, want int) []*event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*event.Event
	for len(got) < want {
		var err error
		if got, err = sub.Next(ctx, got); err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
	}
	return got
}

func wantSeqs(t *testing.T, what string, evs []*event.Event, from, to uint64) {
	t.Helper()
	if uint64(len(evs)) != to-from+1 {
		t.Fatalf("%s: %d events, want %d..%d", what, len(evs), from, to)
	}
	for i, e := range evs {
		if e.IsControl() || e.Seq != from+uint64(i) {
			t.Fatalf("%s: event %d is %s seq %d, want seq %d", what, i, e.Type, e.Seq, from+uint64(i))
		}
	}
}

// A mirror is one subscription however often it is opened; it serves the
// owner's history, live events, holes filled from the owner, a lost last
// batch found by the position check, `offline`
// while the owner is gone and what it missed once the owner is back.
func TestMirrorFollowsOwnerAcrossHolesAndLoss(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	owned, err := newHub(t).Open(ctx, "em-1", stream.Config{Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, owned, 5)
	ownerNC := srv.Connect(t)
	ownerNodes := startNodes(t, srv, "owner")
	rpc, err := ServeRPC(ownerNC, "owner", streamOwner{st: owned}, log)
	if err != nil {
		t.Fatal(err)
	}
	exp := NewExporter(ownerNC, 0, log)
	t.Cleanup(func() { _ = exp.Close(ctx) })
	exp.Export(owned)

	viewerNC := srv.Connect(t)
	viewerNodes := startNodes(t, srv, "viewer")
	t.Cleanup(func() { _ = viewerNodes.Close(ctx) })
	waitFor(t, "owner up", func() bool { return viewerNodes.Up("owner") })
	mirrors := NewMirrors(viewerNC, newHub(t), NewPeers(viewerNC, viewerNodes), viewerNodes, MirrorsOptions{PositionCheck: 50 * time.Millisecond}, log)
	t.Cleanup(func() { _ = mirrors.Close(ctx) })
	entry := cluster.Entry{Spec: emitter.Spec{ID: "em-1", Kind: "log", Retention: emitter.Retention{Persist: true}}, Node: "owner"}
	m1, err := mirrors.Open(ctx, entry)
	if err != nil {
		t.Fatal(err)
	}
	subsBefore := viewerNC.NumSubscriptions()
	m2, _ := mirrors.Open(ctx, entry)
	if m1 != m2 || viewerNC.NumSubscriptions() != subsBefore {
		t.Fatalf("second open: same stream %v, subscriptions %d -> %d", m1 == m2, subsBefore, viewerNC.NumSubscriptions())
	}
	sub := m1.Subscribe(stream.After(0))
	defer sub.Close()
	wantSeqs(t, "history from the owner", read(t, sub, 5), 1, 5)

	publishN(t, owned, 5)
	wantSeqs(t, "live", read(t, sub, 5), 6, 10)

	// Batches the mirror never saw: a hole, filled from the owner.
	exp.Unexport("em-1")
	publishN(t, owned, 3)
	exp.Export(owned)
	publishN(t, owned, 2)
	wantSeqs(t, "hole filled", read(t, sub, 5), 11, 15)

	// A last batch lost with nothing after it: the position check finds
	// it at the owner.
	exp.Unexport("em-1")
	publishN(t, owned, 2)
	exp.Export(owned)
	wantSeqs(t, "lost last batch", read(t, sub, 2), 16, 17)

	// The owner goes away: watchers are told, and get what it published
	// meanwhile once it is back.
	exp.Unexport("em-1")
	_ = rpc.Close(ctx)
	_ = ownerNodes.Close(ctx)
	got := read(t, sub, 1)
	if len(got) != 1 || got[0].Type != event.TypeOffline || got[0].Seq != 17 {
		t.Fatalf("after the owner's loss: %v", got)
	}
	publishN(t, owned, 3)
	if _, err := ServeRPC(ownerNC, "owner", streamOwner{st: owned}, log); err != nil {
		t.Fatal(err)
	}
	back := startNodes(t, srv, "owner")
	t.Cleanup(func() { _ = back.Close(ctx) })
	exp.Export(owned)
	wantSeqs(t, "caught up after the owner's return", read(t, sub, 3), 18, 20)
	publishN(t, owned, 1)
	wantSeqs(t, "live again", read(t, sub, 1), 21, 21)
}
