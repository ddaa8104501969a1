package natsd

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestStartRefusesBadOptions(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no node", Options{Cluster: "c", StoreDir: t.TempDir()}, "required"},
		{"bad route", Options{Node: "n", Cluster: "c", StoreDir: t.TempDir(), Routes: []string{"::nope"}}, "nats-route://"},
		{"bad listen", Options{Node: "n", Cluster: "c", StoreDir: t.TempDir(), Listen: "no-port", Routes: []string{"nats-route://127.0.0.1:1"}}, "cluster listen"},
		{"no routes", Options{Node: "n", Cluster: "c", StoreDir: t.TempDir()}, "needs routes"},
	} {
		_, err := Start(context.Background(), tc.o, log)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// Two embedded nodes routed to each other serve JetStream in-process and
// report their route and a meta leader.
func TestEmbeddedNodesServeJetStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ports := []string{freePort(t), freePort(t)}
	routes := []string{"nats-route://127.0.0.1:" + ports[0], "nats-route://127.0.0.1:" + ports[1]}
	var servers []*Server
	for i, name := range []string{"a", "b"} {
		s, err := Start(ctx, Options{Node: name, Cluster: "c", StoreDir: t.TempDir(), Listen: "127.0.0.1:" + ports[i], Routes: routes},
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close(ctx) }()
		servers = append(servers, s)
	}
	nc, err := servers[0].Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.CreateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: "b", Replicas: 2})
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("JetStream on the embedded nodes: %v", err)
	}
	st := servers[0].State()
	if st.Server != "a" || len(st.Routes) != 1 || st.Routes[0].Remote != "b" || st.MetaLeader == "" || st.Streams != 1 {
		t.Fatalf("state: %+v", st)
	}
	if servers[0].RouteAddr() != "127.0.0.1:"+ports[0] {
		t.Fatalf("route address %q", servers[0].RouteAddr())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
