package natstest_test

import (
	"context"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"testing"
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
