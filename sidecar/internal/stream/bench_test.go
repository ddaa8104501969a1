package streamhttp

import (
	"context"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/stream"
)

type discardFlusher struct{ writes int }

func (d *discardFlusher) Write(p []byte) (int, error) { d.writes++; return len(p), nil }
func (d *discardFlusher) Flush() error                { return nil }

// BenchmarkServeSSE measures one SSE writer draining a queued backlog:
// events/s through the coalescing loop (cached frames, one write per Next).
func BenchmarkServeSSE(b *testing.B) {
	b.ReportAllocs()
	hub := newHub(b)
	ctx := context.Background()
	st, err := hub.Open(ctx, "bench", stream.Config{RingSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1024
	d := drafts(batch)
	w := &discardFlusher{}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := st.Publish(ctx, d, nil); err != nil {
			b.Fatal(err)
		}
		sub := st.Subscribe(stream.After(st.Head() - batch))
		b.StartTimer()
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			for sub.Cursor() < st.Head() {
				time.Sleep(10 * time.Microsecond)
			}
			cancel()
		}()
		_ = ServeSSE(sctx, w, sub, SSEOptions{Heartbeat: time.Hour})
		sub.Close()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
