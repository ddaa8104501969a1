package natstest_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/natsbus/natstest"
)

func TestCluster(t *testing.T) {
	ss := natstest.RunCluster(t, 3)
	nc := ss[1].Connect(t)
	js, _ := jetstream.New(nc)
	_, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "x", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
}

// Every pair of servers of a cluster has its whole pool of routes (plus
// the system account's) when RunCluster returns: traffic of an account
// whose pooled route is still missing would not cross between the pair.
func TestClusterIsFullyRouted(t *testing.T) {
	ss := natstest.RunCluster(t, 3)
	for _, s := range ss {
		rz, err := s.Routez(&server.RoutezOptions{})
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, r := range rz.Routes {
			per[r.RemoteName]++
		}
		for _, peer := range ss {
			if want := server.DEFAULT_ROUTE_POOL_SIZE + 1; peer != s && per[peer.Name] != want {
				t.Errorf("%s has %d routes to %s, want %d: %v", s.Name, per[peer.Name], peer.Name, want, per)
			}
		}
	}
}
