package streamhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
)

// countingFrames is a FramesWriter (as the server's socket writer is)
// that drops the bytes and adds the frames to a shared count.
type countingFrames struct {
	discardFlusher
	frames *atomic.Int64
}

func (c *countingFrames) WriteFrames(f [][]byte) (int, error) {
	c.frames.Add(int64(len(f)))
	return 0, nil
}

// BenchmarkFanoutFilters is one emitter paced at 100,000 events/s (a
// batch of 1,000 every 10 ms) fanned out by the real SSE writers to 1,000
// subscribers, without filters and with 10 distinct filters (100
// subscribers each). "tenth" filters each keep a tenth of the events;
// "all" filters keep every event, so their deliveries equal the
// unfiltered run's and the difference is the filters' own cost. It
// reports events/s the fan-out kept up with, deliveries/s and the
// process's CPU (cores busy, from getrusage) over the run. Subscribers
// may lag at most 32 batches (the ring holds 65): a fan-out that cannot
// keep up shows as fewer events/s, not as gaps.
func BenchmarkFanoutFilters(b *testing.B) {
	for _, tc := range []struct {
		name  string
		exprs func(i int) string // "" for no filter
		share int64              // deliveries per batch per subscriber
	}{
		{"unfiltered", func(int) string { return "" }, fanBatch},
		{"filters=10/tenth", func(i int) string { return fmt.Sprintf(`int(data.k) %% 10 == %d`, i) }, fanBatch / 10},
		{"filters=10/all", func(i int) string { return fmt.Sprintf(`data.level == "info" && data.k >= -%d`, i) }, fanBatch},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFanout(b, tc.exprs, tc.share) })
	}
}

const (
	fanSubscribers = 1000
	fanBatch       = 1000
	fanTick        = 10 * time.Millisecond // 100,000 events/s
	fanMaxLag      = 32                    // batches
)

func benchFanout(b *testing.B, exprs func(int) string, share int64) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := newHub(b).Open(ctx, "bench", stream.Config{RingSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	cache, err := filter.NewCache(0)
	if err != nil {
		b.Fatal(err)
	}
	var delivered atomic.Int64
	var wg sync.WaitGroup
	for i := range fanSubscribers {
		var f *filter.Filter
		if x := exprs(i % 10); x != "" {
			if f, err = cache.Get(x); err != nil {
				b.Fatal(err)
			}
		}
		sub := st.Subscribe(stream.FromNow())
		w := &countingFrames{frames: &delivered}
		wg.Go(func() {
			defer sub.Close()
			_ = ServeSSE(ctx, w, sub, SSEOptions{Heartbeat: time.Hour, Filter: f})
		})
	}
	d := make([]event.Draft, fanBatch)
	for i := range d {
		d[i] = event.Draft{Type: "line", Data: json.RawMessage(
			fmt.Sprintf(`{"k":%d,"level":"info","msg":"request served","ms":%d}`, i%10, i%97))}
	}
	perBatch := share * fanSubscribers
	cpu0, start := cpuTime(), time.Now()
	next := start
	batches := int64(0)
	for b.Loop() {
		for delivered.Load() < (batches-fanMaxLag)*perBatch {
			time.Sleep(50 * time.Microsecond)
		}
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		next = next.Add(fanTick)
		if _, err := st.Publish(ctx, d, nil); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	for delivered.Load() < batches*perBatch {
		time.Sleep(50 * time.Microsecond)
	}
	wall, cpu := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(batches*fanBatch)/wall, "events/s")
	b.ReportMetric(float64(delivered.Load())/wall, "deliveries/s")
	b.ReportMetric(cpu/wall, "cores")
	b.ReportMetric(cpu*1e9/float64(batches*fanBatch), "cpu-ns/event")
}
