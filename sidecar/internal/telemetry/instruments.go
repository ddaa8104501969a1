package telemetry

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Attribute keys of sidestream's own series. Prometheus shows them with
// underscores (sidestream_transport, …).
const (
	KeyTransport   = attribute.Key("sidestream.transport")
	KeyStreamKind  = attribute.Key("sidestream.stream.kind")
	KeyDropReason  = attribute.Key("sidestream.drop.reason")
	KeyPlugin      = attribute.Key("sidestream.plugin")
	KeyPluginState = attribute.Key("sidestream.plugin.state")
	KeyQueue       = attribute.Key("sidestream.queue")
	KeyReason      = attribute.Key("sidestream.reason")
	KeyStage       = attribute.Key("sidestream.command.stage")
)

// Instrument names (OTel) of the series; the Prometheus names (as scraped
// from /metrics) are in PrometheusNames.
const (
	MetricSubscribers     = "sidestream.stream.subscribers"
	MetricPublished       = "sidestream.events.published"
	MetricDelivered       = "sidestream.events.delivered"
	MetricDropped         = "sidestream.events.dropped"
	MetricGaps            = "sidestream.stream.gaps"
	MetricWriteSize       = "sidestream.stream.write.size"
	MetricWriteBytes      = "sidestream.stream.write.bytes"
	MetricPluginState     = "sidestream.plugin.state"
	MetricPluginRestarts  = "sidestream.plugin.restarts"
	MetricPluginInstances = "sidestream.plugin.instances"
	MetricPluginRPC       = "rpc.client.call.duration" // OTel semantic convention
	MetricStoreCommit     = "sidestream.store.commit.duration"
	MetricStoreBatch      = "sidestream.store.commit.size"
	MetricCommandDuration = "sidestream.command.duration"
	MetricCommandBatch    = "sidestream.command.batch.size"
	MetricQueueDepth      = "sidestream.queue.depth"
	MetricQueueClaims     = "sidestream.queue.claims"
	MetricHTTPDuration    = "http.server.request.duration" // OTel semantic convention
	MetricConnsRefused    = "sidestream.http.connections.refused"
	MetricGoroutines      = "sidestream.go.goroutines"
)

// PrometheusNames are the series names /metrics exposes for the named
// instruments (histograms add _bucket, _sum and _count).
var PrometheusNames = []string{
	"sidestream_stream_subscribers", "sidestream_events_published_total", "sidestream_events_delivered_total",
	"sidestream_events_dropped_total", "sidestream_stream_gaps_total", "sidestream_stream_write_size",
	"sidestream_stream_write_bytes", "sidestream_plugin_state", "sidestream_plugin_restarts_total",
	"sidestream_plugin_instances", "rpc_client_call_duration_seconds", "sidestream_store_commit_duration_seconds",
	"sidestream_store_commit_size", "sidestream_queue_depth", "sidestream_queue_claims_total",
	"http_server_request_duration_seconds", "sidestream_http_connections_refused_total",
	"sidestream_go_goroutines", "sidestream_command_duration_seconds", "sidestream_command_batch_size",
}

// PluginStates are the states sidestream_plugin_state reports (1 for the
// current one, 0 for the others), matching pluginhost's states.
var PluginStates = []string{"starting", "running", "restarting", "failed", "stopped"}

// durationBounds (seconds) span 100 µs store commits to 10 s requests.
var durationBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// countBounds fit counts per batch or write (1 … 4096).
var countBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}

// byteBounds fit coalesced write sizes (64 B … 1 MiB).
var byteBounds = []float64{64, 256, 1024, 4096, 16384, 65536, 262144, 1048576}

// Instruments are the ready-made instruments of every named series. Hot
// paths use per-key handles (Stream, Plugin) or cached attribute sets, so a
// measurement does not build attributes.
type Instruments struct {
	meter        metric.Meter
	subscribers  metric.Int64UpDownCounter
	published    metric.Int64Counter
	delivered    metric.Int64Counter
	dropped      metric.Int64Counter
	gaps         metric.Int64Counter
	writeSize    metric.Int64Histogram
	writeBytes   metric.Int64Histogram
	pluginRPC    metric.Float64Histogram
	storeCommit  metric.Float64Histogram
	storeBatch   metric.Int64Histogram
	cmdDuration  metric.Float64Histogram
	cmdBatch     metric.Int64Histogram
	queueDepth   metric.Int64Gauge
	queueClaims  metric.Int64Counter
	httpDuration metric.Float64Histogram
	connsRefused metric.Int64Counter

	pluginState     metric.Int64ObservableGauge
	pluginRestarts  metric.Int64ObservableCounter
	pluginInstances metric.Int64ObservableGauge

	streams *cache[string, *StreamMetrics]
	plugins *cache[string, *PluginMetrics]
	queues  *cache[string, attrOpts]
	reasons *cache[string, attrOpts]
	http    *cache[httpKey, []metric.RecordOption]
}

// instrumentBuilder creates instruments and keeps the first error, so the
// constructor stays a flat list.
type instrumentBuilder struct {
	m    metric.Meter
	errs []error
}

func (b *instrumentBuilder) check(name string, err error) {
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("telemetry: instrument %s: %w", name, err))
	}
}

func (b *instrumentBuilder) counter(name, unit, desc string) metric.Int64Counter {
	c, err := b.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.check(name, err)
	return c
}

func (b *instrumentBuilder) intHist(name, unit, desc string, bounds []float64) metric.Int64Histogram {
	h, err := b.m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(bounds...))
	b.check(name, err)
	return h
}

func (b *instrumentBuilder) seconds(name, desc string) metric.Float64Histogram {
	h, err := b.m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	b.check(name, err)
	return h
}

func newInstruments(m metric.Meter) (*Instruments, error) {
	b := &instrumentBuilder{m: m}
	i := &Instruments{meter: m}
	var err error
	i.subscribers, err = m.Int64UpDownCounter(MetricSubscribers, metric.WithUnit("{subscriber}"),
		metric.WithDescription("Connected stream subscribers by transport and stream kind."))
	b.check(MetricSubscribers, err)
	i.published = b.counter(MetricPublished, "{event}", "Events appended to streams, by stream kind.")
	i.delivered = b.counter(MetricDelivered, "{event}", "Events written to subscribers, by transport and stream kind.")
	i.dropped = b.counter(MetricDropped, "{event}", "Events not delivered, by stream kind and reason.")
	i.gaps = b.counter(MetricGaps, "{gap}", "Gap events sent because a resume point was older than history.")
	i.writeSize = b.intHist(MetricWriteSize, "{event}", "Events per coalesced subscriber write.", countBounds)
	i.writeBytes = b.intHist(MetricWriteBytes, "By", "Bytes per coalesced subscriber write.", byteBounds)
	i.pluginRPC = b.seconds(MetricPluginRPC, "Duration of gRPC calls to plugins.")
	i.storeCommit = b.seconds(MetricStoreCommit, "Duration of a group commit (transaction and fsync).")
	i.storeBatch = b.intHist(MetricStoreBatch, "{write}", "Writes sharing one group commit.", countBounds)
	i.cmdDuration = b.seconds(MetricCommandDuration,
		"Time an emitter command spent in each stage (queue: waiting for its plugin round trip; plugin: the round trip; commit: until durable), by plugin.")
	i.cmdBatch = b.intHist(MetricCommandBatch, "{command}", "Commands sharing one plugin round trip, by plugin.", countBounds)
	i.queueDepth, err = m.Int64Gauge(MetricQueueDepth, metric.WithUnit("{message}"),
		metric.WithDescription("Messages in a queue (claimed or not)."))
	b.check(MetricQueueDepth, err)
	i.queueClaims = b.counter(MetricQueueClaims, "{message}", "Messages claimed from a queue.")
	i.httpDuration = b.seconds(MetricHTTPDuration, "Duration of HTTP server requests (streams: until they end).")
	i.connsRefused = b.counter(MetricConnsRefused, "{connection}",
		"HTTP connections refused at accept (connection limits) or whose accept failed (out of file descriptors), by reason.")
	i.pluginState, err = m.Int64ObservableGauge(MetricPluginState,
		metric.WithDescription("1 for a plugin's current supervision state, 0 for the others."))
	b.check(MetricPluginState, err)
	i.pluginRestarts, err = m.Int64ObservableCounter(MetricPluginRestarts, metric.WithUnit("{restart}"),
		metric.WithDescription("Plugin process restarts."))
	b.check(MetricPluginRestarts, err)
	i.pluginInstances, err = m.Int64ObservableGauge(MetricPluginInstances, metric.WithUnit("{instance}"),
		metric.WithDescription("Emitter instances a plugin process hosts."))
	b.check(MetricPluginInstances, err)
	// Leaks show as a count that keeps growing under steady load (the
	// soak benchmark samples it).
	_, err = m.Int64ObservableGauge(MetricGoroutines, metric.WithUnit("{goroutine}"),
		metric.WithDescription("Goroutines of the sidecar process."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(runtime.NumGoroutine()))
			return nil
		}))
	b.check(MetricGoroutines, err)
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	i.streams = newCache(i.newStreamMetrics, otherString)
	i.plugins = newCache(i.newPluginMetrics, otherString)
	i.queues = newCache(func(q string) attrOpts { return newAttrOpts(KeyQueue.String(q)) }, otherString)
	i.reasons = newCache(func(r string) attrOpts { return newAttrOpts(KeyReason.String(r)) }, otherString)
	i.http = newCache(newHTTPOptions, func(k httpKey) httpKey { k.route = otherValue; return k })
	return i, nil
}

// StoreCommit records one group commit: its duration and how many writes
// it carried.
func (i *Instruments) StoreCommit(ctx context.Context, d time.Duration, writes int) {
	i.storeCommit.Record(ctx, d.Seconds())
	i.storeBatch.Record(ctx, int64(writes))
}

// QueueDepth sets the number of messages in queue.
func (i *Instruments) QueueDepth(ctx context.Context, queue string, depth int64) {
	i.queueDepth.Record(ctx, depth, i.queues.get(queue).rec...)
}

// QueueClaimed counts n messages claimed from queue.
func (i *Instruments) QueueClaimed(ctx context.Context, queue string, n int64) {
	i.queueClaims.Add(ctx, n, i.queues.get(queue).add...)
}

// ConnsRefused counts n HTTP connections refused for reason (n = 0
// makes the series exist before the first refusal).
func (i *Instruments) ConnsRefused(ctx context.Context, reason string, n int64) {
	i.connsRefused.Add(ctx, n, i.reasons.get(reason).add...)
}

// attrOpts is one pre-built attribute set as ready variadic options for
// both counters (Add) and histograms and gauges (Record).
type attrOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newAttrOpts(kvs ...attribute.KeyValue) attrOpts {
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return attrOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}
