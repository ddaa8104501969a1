package natsbus_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go v1.55.0 races with itself: newAsyncReply starts this
		// goroutine, which then reads the connection-status channel
		// under the publisher's lock; when cleanupReplySub (the JetStream
		// context going away with its connection) runs first, it reads
		// nil and waits on a nil channel forever. One goroutine per such
		// race, inside the library; seen once in a -race CI run.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}
