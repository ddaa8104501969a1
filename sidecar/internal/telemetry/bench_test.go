package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/internal/telemetry"
)

// The hot-path measurements: each must not allocate.
func BenchmarkInstruments(b *testing.B) {
	tel := newTelemetry(b, telemetry.Options{})
	ins := tel.Instruments()
	ctx := context.Background()
	s := ins.Stream("magic")
	p := ins.Plugin("magic")
	cases := []struct {
		name string
		fn   func()
	}{
		{"Published", func() { s.Published(ctx, 1) }},
		{"Delivered", func() { s.Delivered(ctx, telemetry.TransportSSE, 1) }},
		{"Write", func() { s.Write(ctx, telemetry.TransportWS, 8, 1024) }},
		{"Dropped", func() { s.Dropped(ctx, "slow_subscriber", 1) }},
		{"StreamLookup+Published", func() { ins.Stream("magic").Published(ctx, 1) }},
		{"PluginRPC", func() { p.RPC(ctx, "sidestream.plugin.v1.Emitter/Command", time.Millisecond, false) }},
		{"StoreCommit", func() { ins.StoreCommit(ctx, time.Millisecond, 16) }},
		{"HTTPRequest", func() { ins.HTTPRequest(ctx, "GET", "/sse/log/:id", 200, time.Millisecond) }},
		{"QueueClaimed", func() { ins.QueueClaimed(ctx, "orders", 1) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.fn()
			}
		})
	}
}
