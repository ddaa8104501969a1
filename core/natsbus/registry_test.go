package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
)

func testJS(t *testing.T, s *natstest.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func openRegistry(t *testing.T, js jetstream.JetStream, replicas int) *Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := OpenRegistry(ctx, js, replicas, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// Two nodes of a 3-node cluster share one registry: an id claimed on one
// cannot be claimed on the other, both list it, and a delete frees it.
func TestRegistrySharedAcrossNodes(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	a := openRegistry(t, testJS(t, servers[0]), 3)
	b := openRegistry(t, testJS(t, servers[1]), 3)
	ctx := context.Background()
	e := cluster.Entry{Spec: emitter.Spec{ID: "em-1", Kind: "log", CreatedAt: time.Now()}, Node: "n1"}
	if err := a.Claim(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, cluster.Entry{Spec: emitter.Spec{ID: "em-1"}, Node: "n2"}); !errors.Is(err, emitter.ErrExists) {
		t.Fatalf("second claim: %v, want ErrExists", err)
	}
	got, err := b.Get(ctx, "em-1") // read through on a cache miss
	if err != nil || got.Node != "n1" || got.Spec.Kind != "log" {
		t.Fatalf("get on b: %+v %v", got, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(mustList(t, b)) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(mustList(t, b)); n != 1 {
		t.Fatalf("b lists %d entries, want 1", n)
	}
	if c := b.Counts()["n1"]; c != 1 {
		t.Fatalf("counts on b: %v", b.Counts())
	}
	if err := a.Delete(ctx, "em-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, cluster.Entry{Spec: emitter.Spec{ID: "em-1"}, Node: "n2"}); err != nil {
		t.Fatalf("claim after delete: %v", err)
	}
	if _, err := a.Get(ctx, "em-missing"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func mustList(t *testing.T, r *Registry) []cluster.Entry {
	t.Helper()
	l, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTokenEscapesSubjectSeparators(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"em-1", "em-1"}, {"a.b", "a_2Eb"}, {"a_b", "a_5Fb"}, {"a_2Eb", "a_5F2Eb"}, {"x*>", "x_2A_3E"},
	} {
		if got := token(tc.in); got != tc.want {
			t.Errorf("token(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, name := range []string{"a.b", "a_2Eb", "a__b_", "x*>.y", "plain", "_", "a_zz"} {
		if got := untoken(token(name)); got != name {
			t.Errorf("untoken(token(%q)) = %q", name, got)
		}
	}
	if token("a.b") == token("a_2Eb") {
		t.Error("escape is ambiguous")
	}
}
