package queueclient

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// BenchmarkProduceConsumeWS: 2 producers post batches over WebSockets
// (each post acknowledged only once fsynced) while 2 subscribed consumers
// receive them through claims and delete them (each delete acknowledged
// only once fsynced); one op is one message produced and consumed end to
// end, and a message delivered twice fails the run. Client and server
// share the machine. QBENCH_NOSYNC=1 turns fsync off (for diagnosis only).
func BenchmarkProduceConsumeWS(b *testing.B) {
	for _, batch := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			benchRun(b, newEnv(b, os.Getenv("QBENCH_NOSYNC") != ""), batch)
		})
	}
}

// msgIDLen is the length of the bbolt driver's message ids.
const msgIDLen = 16

func benchRun(b *testing.B, e *env, batch int) {
	const producers, consumers = 2, 2
	// 32 posts and 32 deletes in flight per connection and a window of 40
	// claims per consumer keep the committer's groups full at small
	// batches (batch 10: ~20 writes per transaction instead of ~6).
	// QBENCH_INFLIGHT and QBENCH_WINDOW (in batches) override them.
	inflight, window := envInt("QBENCH_INFLIGHT", 32), envInt("QBENCH_WINDOW", 40)
	acks := envInt("QBENCH_ACKS", inflight)
	per := (b.N + producers*batch - 1) / (producers * batch) * batch
	total := per * producers
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	q := fmt.Sprintf("bench-%d-%d", batch, b.N)
	tg := Target{URL: e.base, Queue: q, Project: "bench", ClientID: clientA}
	var wg sync.WaitGroup
	// Every delivery is recorded: a message delivered twice fails the run.
	// Ids are kept as arrays: a map of strings is pointers the collector
	// scans on every cycle, which made the checker, not the generator or
	// the server, the largest part of the live heap (36-53 MB at 600k).
	consumed := make(map[[msgIDLen]byte]struct{}, total)
	var mu sync.Mutex
	got, dups, odd := 0, 0, 0
	done := make(chan struct{})
	errs := make(chan error, producers+consumers)
	b.ResetTimer()
	st0, busy0 := e.st.Stats(), e.commitNs.Load()
	start := time.Now()
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for range consumers {
		wg.Go(func() {
			_, err := Consume(cctx, ConsumeOptions{Target: tg, Batch: batch, ClaimTTL: 300 * time.Second, Window: window * batch,
				Ack: true, InFlight: acks}, func(d api.QueueDelivery) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range d.Messages {
					var key [msgIDLen]byte
					if copy(key[:], m.ID) != len(m.ID) || len(m.ID) != msgIDLen {
						odd++
					}
					if _, seen := consumed[key]; seen {
						dups++
					}
					consumed[key] = struct{}{}
					if got++; got == total {
						close(done)
					}
				}
			})
			if err != nil && cctx.Err() == nil {
				errs <- err
			}
		})
	}
	for range producers {
		wg.Go(func() {
			if _, err := Produce(ctx, ProduceOptions{Target: tg, Count: per, Batch: batch, InFlight: inflight}); err != nil {
				errs <- err
			}
		})
	}
	select {
	case <-done:
	case err := <-errs:
		b.Fatal(err)
	case <-ctx.Done():
		b.Fatal("benchmark timed out")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	st, busy := e.st.Stats(), e.commitNs.Load()-busy0
	txs := float64(st.Transactions - st0.Transactions)
	stop()
	wg.Wait()
	if mu.Lock(); dups > 0 || odd > 0 {
		b.Fatalf("%d messages delivered twice, %d ids not %d bytes long", dups, odd, msgIDLen)
	}
	mu.Unlock()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(txs/elapsed.Seconds(), "tx/s")
	b.ReportMetric(float64(st.Writes-st0.Writes)/txs, "writes/tx")
	// committer% is the share of the run the committer spent inside
	// transactions (apply + write + fsync): near 100 means it is the
	// bottleneck.
	b.ReportMetric(100*float64(busy)/float64(elapsed), "committer%")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
