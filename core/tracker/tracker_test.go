package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string) (*Tracker, func()) {
	t.Helper()
	ctx := context.Background()
	store, err := bolt.Open(ctx, path, bolt.Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(store, slog.New(slog.DiscardHandler), stream.HubOptions{})
	return New(hub, Options{}), func() {
		_ = hub.Close(ctx)
		_ = store.Close(ctx)
	}
}

func TestPublishSubscribeAndPersist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	tr, closeAll := open(t, path)
	st, err := tr.Stream(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.FromNow())
	defer sub.Close()
	for i, data := range []string{`"hello"`, `{ "a" : [1, 2] }`} {
		seq, err := tr.Publish(ctx, "alice", json.RawMessage(data))
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("publish %d: seq %d, %v", i, seq, err)
		}
	}
	evs, err := sub.Next(ctx, nil)
	if err != nil || len(evs) != 2 {
		t.Fatalf("next: %d events, %v", len(evs), err)
	}
	if evs[0].Stream != "track:alice" || evs[0].Type != EventType || string(evs[1].Data) != `{"a":[1,2]}` {
		t.Fatalf("events %+v %+v", evs[0], evs[1])
	}
	if !st.Config().Persist || st.Config().MaxEvents != 10000 {
		t.Fatalf("config %+v", st.Config())
	}
	sub.Close()
	closeAll()

	// After a restart the history is there and seqs continue.
	tr, closeAll = open(t, path)
	defer closeAll()
	st, err = tr.Stream(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	old, err := st.ReadAfter(ctx, 0, 10)
	if err != nil || len(old) != 2 || string(old[0].Data) != `"hello"` {
		t.Fatalf("history after restart: %v %v", eventsData(old), err)
	}
	if seq, err := tr.Publish(ctx, "alice", json.RawMessage(`3`)); err != nil || seq != 3 {
		t.Fatalf("publish after restart: %d %v", seq, err)
	}
	// Users are separate streams.
	if seq, err := tr.Publish(ctx, "bob", json.RawMessage(`1`)); err != nil || seq != 1 {
		t.Fatalf("bob: %d %v", seq, err)
	}
}

func eventsData(evs []*event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Data))
	}
	return out
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	tr, closeAll := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer closeAll()
	ctx := context.Background()
	for _, u := range []string{"", "a b", "a/b/c", "/b", "a/", "track:x", "é", strings.Repeat("a", 65)} {
		if _, err := tr.Publish(ctx, u, json.RawMessage(`1`)); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("user %q: %v, want ErrInvalidUser", u, err)
		}
		if _, err := tr.Stream(ctx, u); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("stream %q: %v, want ErrInvalidUser", u, err)
		}
	}
	for _, ok := range []string{"a", "A.b-c_9", strings.Repeat("z", 64), Qualify("tenant-1", "bob")} {
		if !ValidUser(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	// A tenant's user is a user of its own: a client's name holds no '/'.
	if Qualify("", "bob") != "bob" || Qualify("t", "bob") != "t/bob" || ValidName("t/bob") {
		t.Error("Qualify/ValidName: tenants do not separate users")
	}
	for _, d := range []string{"", "{", "1 2", "nope"} {
		if _, err := tr.Publish(ctx, "alice", json.RawMessage(d)); !errors.Is(err, ErrInvalidData) {
			t.Errorf("data %q: %v, want ErrInvalidData", d, err)
		}
	}
}

// A ?data= string is stored exactly as encoding/json writes it, whether
// it takes the copy-as-is path or not, and a bad user is refused.
func TestPublishStringEncodesAsJSON(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr, closeAll := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer closeAll()
	st, err := tr.Stream(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.FromNow())
	defer sub.Close()
	in := []string{"", "bench-12", "a b~", `q"uote`, `back\slash`, "<a&b>", "tab\there", "del\x7f", "é ☃", "bad \xff utf8", "line\u2028sep"}
	for i, s := range in {
		if seq, err := tr.PublishString(ctx, "bob", s); err != nil || seq != uint64(i+1) {
			t.Fatalf("PublishString(%q) = %d, %v", s, seq, err)
		}
	}
	var evs []*event.Event
	for len(evs) < len(in) {
		got, err := sub.Next(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, got...)
	}
	for i, s := range in {
		want, _ := json.Marshal(s)
		if string(evs[i].Data) != string(want) {
			t.Errorf("PublishString(%q) stored %s, want %s", s, evs[i].Data, want)
		}
	}
	if _, err := tr.PublishString(ctx, "no/t ok", "x"); !errors.Is(err, ErrInvalidUser) {
		t.Errorf("bad user: %v, want ErrInvalidUser", err)
	}
}
