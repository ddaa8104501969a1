package pluginhost

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

// countSink counts events and closes done once it saw want of them.
type countSink struct {
	want, got int
	cp        []byte
	done      chan struct{}
}

func (s *countSink) Deliver(_ context.Context, b emitter.Batch) error {
	s.got += len(b.Events) // one instance delivers one batch at a time
	s.cp = b.Checkpoint
	if s.got >= s.want && s.done != nil {
		close(s.done)
		s.done = nil
	}
	return nil
}

func (s *countSink) Checkpoint(context.Context) ([]byte, error) { return nil, nil }

// BenchmarkPluginStream measures events per second from one real plugin
// subprocess, through the gRPC stream and the host, into a Sink, in
// batches of 1000 small events. b.N counts events.
func BenchmarkPluginStream(b *testing.B) {
	b.ReportAllocs()
	h, err := New(fastConfig(builtin("counter", "counter")), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	defer func() {
		if err := h.Close(ctx); err != nil {
			b.Error(err)
		}
	}()
	if _, err := h.Describe(ctx, "counter"); err != nil { // waits for the process
		b.Fatal(err)
	}
	done := make(chan struct{})
	sink := &countSink{want: b.N, done: done}
	b.ResetTimer()
	start := time.Now()
	if err := h.Start(ctx, "counter", "bench", json.RawMessage(`{"batch":1000}`), sink); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatal("benchmark did not finish")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := h.Stop(ctx, "counter", "bench"); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
