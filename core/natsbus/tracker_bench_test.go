package natsbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/natsbus/natstest"
)

// BenchmarkTracker measures acknowledged publishes per second of a
// 3-node cluster (Replicas 3, file storage): 64 concurrent publishers
// spread over the three nodes, to many users (no conflicts but the
// ones of the same user) or all to one user (every publish races the
// others: optimistic concurrency retries).
func BenchmarkTracker(b *testing.B) {
	nodes := trackNodes(b, natstest.RunCluster(b, 3))
	for _, bc := range []struct {
		name  string
		users int
	}{{"users=256", 256}, {"users=1", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			var next atomic.Int64
			data := json.RawMessage(`{"lat":48.85,"lon":2.35}`)
			b.SetParallelism(32) // 64 publishers on 2 cores: each waits on its ack
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				id := next.Add(1)
				n := nodes[id%int64(len(nodes))]
				for i := 0; pb.Next(); i++ {
					user := fmt.Sprint("u", (id*7919+int64(i))%int64(bc.users))
					if _, err := n.tr.Publish(context.Background(), user, data); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
		})
	}
}
