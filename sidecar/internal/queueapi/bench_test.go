package queueapi

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// BenchmarkProduceConsumeWS: 2 producers post batches over WebSockets
// (each post acknowledged only once fsynced) while 2 subscribed consumers
// receive them through claims and delete them; one op is one message
// produced and consumed end to end. Client and server share the machine.
func BenchmarkProduceConsumeWS(b *testing.B) {
	for _, batch := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			benchRun(b, newEnv(b, envOpts{nosync: os.Getenv("QBENCH_NOSYNC") != ""}), batch)
		})
	}
}

func benchRun(b *testing.B, e *env, batch int) {
	const producers, consumers = 2, 2
	per := (b.N + producers*batch - 1) / (producers * batch) * batch
	total := per * producers
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	q := fmt.Sprintf("bench-%d-%d", batch, b.N)
	tg := Target{URL: e.base, Queue: q, Project: "bench", ClientID: clientA}
	var wg sync.WaitGroup
	var consumed sync.Map
	var mu sync.Mutex
	got := 0
	done := make(chan struct{})
	errs := make(chan error, producers+consumers)
	b.ResetTimer()
	st0, busy0 := e.st.Stats(), e.commitNs.Load()
	start := time.Now()
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for range consumers {
		wg.Go(func() {
			_, err := Consume(cctx, ConsumeOptions{Target: tg, Batch: batch, ClaimTTL: 300 * time.Second, Window: 20 * batch,
				Ack: true, InFlight: 8, OnMessage: func(id string) {
					consumed.Store(id, true)
					mu.Lock()
					got++
					if got == total {
						close(done)
					}
					mu.Unlock()
				}})
			if err != nil && cctx.Err() == nil {
				errs <- err
			}
		})
	}
	for range producers {
		wg.Go(func() {
			if _, err := Produce(ctx, ProduceOptions{Target: tg, Count: per, Batch: batch, InFlight: 8}); err != nil {
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
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(txs/elapsed.Seconds(), "tx/s")
	b.ReportMetric(float64(st.Writes-st0.Writes)/txs, "writes/tx")
	// committer% is the share of the run the committer spent inside
	// transactions (apply + write + fsync): near 100 means it is the
	// bottleneck.
	b.ReportMetric(100*float64(busy)/float64(elapsed), "committer%")
}
