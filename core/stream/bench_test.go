package stream_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/internal/memstore"
	"github.com/sidestream/sidestream/core/stream"
)

// BenchmarkPublishFanout publishes b.N single events to a stream without
// history while each subscriber loops on Next in its own goroutine, and
// reports events delivered to subscribers per second (until every
// subscriber has caught up).
func BenchmarkPublishFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			h := stream.NewHub(memstore.New(), discard(), stream.HubOptions{})
			defer func() { _ = h.Close(context.Background()) }()
			s, err := h.Open(context.Background(), "s", stream.Config{})
			if err != nil {
				b.Fatal(err)
			}
			target := s.Head() + uint64(b.N)
			var delivered, gaps atomic.Int64
			var caughtUp, wg sync.WaitGroup
			caughtUp.Add(n)
			for range n {
				sub := s.Subscribe(stream.FromNow())
				wg.Go(func() {
					defer sub.Close()
					var buf []*event.Event
					done := false
					for {
						var err error
						buf, err = sub.Next(context.Background(), buf[:0])
						for _, e := range buf {
							if e.IsGap() {
								gaps.Add(1)
							} else {
								delivered.Add(1)
							}
						}
						if !done && sub.Cursor() >= target {
							done = true
							caughtUp.Done()
						}
						if errors.Is(err, stream.ErrClosed) {
							return
						}
					}
				})
			}
			d := []event.Draft{{Type: "tick", Data: []byte(`{"n":1}`)}}
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := s.Publish(ctx, d, nil); err != nil {
					b.Fatal(err)
				}
			}
			caughtUp.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := h.Remove(ctx, "s", false); err != nil {
				b.Fatal(err)
			}
			wg.Wait()
			b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(gaps.Load()), "gaps")
		})
	}
}

func benchEvent(data []byte) *event.Event {
	return &event.Event{Stream: "emitter-1", Seq: 123456, Type: "log.line",
		Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Data: data}
}

var benchData = []byte(`{"line":"2024-05-06T07:08:09Z INFO request served path=/api/v1/emitters status=200 dur=1.2ms","file":"/var/log/app.log"}`)

func BenchmarkEncodeJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchData)))
	for b.Loop() {
		if len(benchEvent(benchData).JSON()) == 0 {
			b.Fatal("empty envelope")
		}
	}
}

// BenchmarkPublishPersist publishes single events to persisted streams on
// a real bbolt file (with fsync), from 1 or 16 concurrent publishers on
// one stream, and 16 publishers on 16 streams.
func BenchmarkPublishPersist(b *testing.B) {
	for _, tc := range []struct {
		name              string
		publishers, names int
	}{{"pub=1", 1, 1}, {"pub=16/streams=1", 16, 1}, {"pub=16/streams=16", 16, 16}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			store := openBolt(b, filepath.Join(b.TempDir(), "bench.db"))
			h := stream.NewHub(store, discard(), stream.HubOptions{})
			defer func() { _ = h.Close(context.Background()) }()
			streams := make([]*stream.Stream, tc.names)
			for i := range streams {
				streams[i] = open(b, h, fmt.Sprintf("s%d", i), stream.Config{Persist: true})
			}
			d := []event.Draft{{Type: "tick", Data: benchData}}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for p := range tc.publishers {
				wg.Go(func() {
					s := streams[p%tc.names]
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Publish(context.Background(), d, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
