package app

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/internal/httpapi"
	"github.com/sidestream/sidestream/sidecar/internal/pluginhost"
	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
	"github.com/sidestream/sidestream/sidecar/internal/telemetry"
)

// spanHook adapts a tracer to the core's tracing hooks (core/bolt knows no
// OTel): one span per call, its error recorded.
func spanHook(tel *telemetry.Telemetry, scope string) func(ctx context.Context, name string) (context.Context, func(error)) {
	if !tel.Tracing() {
		return nil // the store then skips the hook: no span, no closure per commit
	}
	tr := tel.Tracer(scope)
	return func(ctx context.Context, name string) (context.Context, func(error)) {
		ctx, span := tr.Start(ctx, name)
		return ctx, func(err error) {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
}

// streamMetrics implements httpapi.Metrics with the telemetry instruments.
type streamMetrics struct{ ins *telemetry.Instruments }

var _ httpapi.Metrics = streamMetrics{}

func (m streamMetrics) Subscriber(kind, transport string) (streamhttp.Observer, func()) {
	t := telemetry.TransportSSE
	if transport == httpapi.TransportWS {
		t = telemetry.TransportWS
	}
	sm := m.ins.Stream(kind)
	ctx := context.Background()
	sm.SubscriberAdded(ctx, t)
	return subscriberObserver{sm: sm, t: t}, func() { sm.SubscriberRemoved(ctx, t) }
}

// subscriberObserver reports one subscriber's writes.
type subscriberObserver struct {
	sm *telemetry.StreamMetrics
	t  telemetry.Transport
}

func (o subscriberObserver) Wrote(events, bytes int) {
	ctx := context.Background()
	o.sm.Delivered(ctx, o.t, events)
	o.sm.Write(ctx, o.t, events, bytes)
}

func (o subscriberObserver) Gap(missed uint64) {
	ctx := context.Background()
	o.sm.Gap(ctx, o.t)
	// Events behind a gap are dropped for this subscriber: older than the
	// history kept when it resumed or fell behind.
	o.sm.Dropped(ctx, telemetry.DropBehindHistory, int(missed))
}

func (o subscriberObserver) Skipped(n uint64) {
	// Left out for this subscriber to keep to its ?max_rate.
	o.sm.Dropped(context.Background(), telemetry.DropMaxRate, int(n))
}

// connsRefused counts the connections the HTTP server refuses; every
// reason's series exists from the start, at zero.
func connsRefused(ins *telemetry.Instruments) func(reason string) {
	ctx := context.Background()
	for _, r := range []string{httpapi.RefusedMaxConns, httpapi.RefusedMaxConnsPerIP, httpapi.RefusedAcceptFailed} {
		ins.ConnsRefused(ctx, r, 0)
	}
	return func(reason string) { ins.ConnsRefused(ctx, reason, 1) }
}

// pluginSamples feeds the plugin state, restart and instance series.
func pluginSamples(host *pluginhost.Host) func() []telemetry.PluginSample {
	return func() []telemetry.PluginSample {
		st := host.Plugins()
		out := make([]telemetry.PluginSample, len(st))
		for i, p := range st {
			out[i] = telemetry.PluginSample{Name: p.Name, State: string(p.State),
				Restarts: int64(p.Restarts), Instances: int64(p.Instances)}
		}
		return out
	}
}

// commandMetrics reports where emitter commands spend their time.
type commandMetrics struct{ ins *telemetry.Instruments }

var _ emitter.CommandObserver = commandMetrics{}

func (m commandMetrics) CommandStage(kind string, stage emitter.CommandStage, d time.Duration, n int) {
	m.ins.Plugin(kind).CommandStage(context.Background(), stage.String(), d, n)
}

func (m commandMetrics) CommandBatch(kind string, n int) {
	m.ins.Plugin(kind).CommandBatch(context.Background(), n)
}
