package streamhttp

import (
	"context"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

type discardFlusher struct{ writes int }

func (d *discardFlusher) Write(p []byte) (int, error) { d.writes++; return len(p), nil }
func (d *discardFlusher) Flush() error                { return nil }

// BenchmarkServeSSE measures one SSE writer draining a queued backlog:
// events/s through the coalescing loop (cached frames, one write per Next).
func BenchmarkServeSSE(b *testing.B) { benchServeSSE(b, SSEOptions{Heartbeat: time.Hour}) }

// BenchmarkServeSSEMaxRate is BenchmarkServeSSE for a subscriber that
// asked for ?max_rate=1000: the cost per event offered of thinning it
// (almost all left out, one skipped marker per delivered event).
func BenchmarkServeSSEMaxRate(b *testing.B) {
	benchServeSSE(b, SSEOptions{Heartbeat: time.Hour, MaxRate: 1000})
}

func benchServeSSE(b *testing.B, o SSEOptions) {
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
		_ = ServeSSE(sctx, w, sub, o)
		sub.Close()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// discardFrames is a FramesWriter that drops what it gets.
type discardFrames struct{ discardFlusher }

func (d *discardFrames) WriteFrames(f [][]byte) (int, error) {
	n := 0
	for _, b := range f {
		n += len(b)
	}
	return n, nil
}

// BenchmarkWriteEventsBatch writes a lagging subscriber's batch (1024
// events) through the copying path and as cached frames: the copy grows
// a buffer past the pool's bound and leaves it to the collector.
func BenchmarkWriteEventsBatch(b *testing.B) {
	evs := make([]*event.Event, 1024)
	for i := range evs {
		evs[i] = &event.Event{Stream: "s", Seq: uint64(i + 1), Type: "magic", Time: time.Now(),
			Data: []byte(`{"magic":-2762725995429886737,"timestamp":"2026-11-23T17:00:00.123456789Z"}`)}
		wire.SSEFrame(evs[i]) // cached, as a hub's events are after their first writer
	}
	for _, tc := range []struct {
		name string
		w    FlushWriter
	}{{"copy", &discardFlusher{}}, {"frames", &discardFrames{}}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := writeEvents(tc.w, evs, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
