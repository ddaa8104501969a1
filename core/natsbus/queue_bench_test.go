package natsbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

// BenchmarkJetStreamQueue measures durable produce + consume through
// queue.Service over the JetStream driver: 2 producers posting batches
// of 10 with 32 posts in flight each, 2 consumers claiming 10 at a time
// with 40 claims in flight each and deleting each claim's messages in one
// call (the shape of the bbolt driver's ProduceConsumeWS benchmark). With
// 3 nodes (R3) the producers use node 1 and the consumers nodes 2 and 3.
// One op is one message; msgs/s counts messages both posted and deleted.
func BenchmarkJetStreamQueue(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var nodes []*natstest.Server
			if n == 1 {
				nodes = []*natstest.Server{natstest.RunServer(b)}
			} else {
				nodes = natstest.RunCluster(b, n)
			}
			o := logOptions(n)
			svcs := make([]*queue.Service, n)
			for i, srv := range nodes {
				svcs[i] = queue.NewService(openDriver(b, srv, o), queue.Options{}, nil)
				b.Cleanup(func() { _ = svcs[i].Close(context.Background()) })
			}
			producer, consumers := svcs[0], []*queue.Service{svcs[1%n], svcs[2%n]}
			benchProduceConsume(b, producer, consumers)
			js, err := jetstream.New(nodes[0].Connect(b))
			if err != nil {
				b.Fatal(err)
			}
			st, err := js.Stream(context.Background(), o.Stream)
			if err != nil {
				b.Fatal(err)
			}
			// How well concurrent calls share log entries.
			b.ReportMetric(float64(b.N)/float64(st.CachedInfo().State.LastSeq), "msgs/entry")
		})
	}
}

func benchProduceConsume(b *testing.B, producer *queue.Service, consumers []*queue.Service) {
	const batch, inflight, window = 10, 32, 40
	k := queue.Key{Tenant: "bench", Queue: "q"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body := json.RawMessage(`{"event":"benchmark","payload":"0123456789abcdef0123456789abcdef"}`)
	total := (b.N + batch - 1) / batch * batch
	var (
		posts    atomic.Int64 // batches left to post
		consumed atomic.Int64
		wg       sync.WaitGroup
		errs     = make(chan error, 2*inflight+len(consumers)*window)
	)
	posts.Store(int64(total / batch))
	b.ResetTimer()
	for range 2 * inflight {
		wg.Go(func() {
			msgs := make([]queue.NewMessage, batch)
			for posts.Add(-1) >= 0 {
				for i := range msgs {
					msgs[i] = queue.NewMessage{Body: body}
				}
				if _, err := producer.Post(ctx, k, queuetest.ClientA, msgs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range len(consumers) * window {
		c := consumers[i%len(consumers)]
		wg.Go(func() {
			if err := consume(ctx, c, k, batch, int64(total), &consumed); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if got := consumed.Load(); got != int64(total) {
		b.Fatalf("consumed %d of %d", got, total)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
}

// consume claims (limit at a time) and deletes from k until total
// messages were consumed by all consumers together.
func consume(ctx context.Context, c *queue.Service, k queue.Key, limit int, total int64, consumed *atomic.Int64) error {
	for consumed.Load() < total && ctx.Err() == nil {
		cl, err := c.Claim(ctx, k, queuetest.ClientB, queue.ClaimOptions{Limit: limit})
		if err != nil {
			return err
		}
		if len(cl.Messages) == 0 {
			time.Sleep(time.Millisecond) // posts on other nodes wake no one here
			continue
		}
		ids := make([]string, len(cl.Messages))
		for i, m := range cl.Messages {
			ids[i] = m.ID
		}
		if err := c.Delete(ctx, k, queuetest.ClientB, ids, []string{cl.ID}); err != nil {
			return err
		}
		consumed.Add(int64(len(ids)))
	}
	return nil
}
