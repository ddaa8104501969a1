package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Transport is how a subscriber receives a stream.
type Transport uint8

// The transports; the set is closed so their attribute sets are built once.
const (
	TransportSSE Transport = iota
	TransportWS
	TransportREST
	TransportCluster // forwarded to another node over NATS
	numTransports
)

var transportNames = [numTransports]string{"sse", "ws", "rest", "cluster"}

func (t Transport) String() string {
	if t < numTransports {
		return transportNames[t]
	}
	return "unknown"
}

// StreamMetrics are the series of one stream kind (an emitter kind such as
// "magic", or "tracker", "queue"). Get it once with Instruments.Stream and
// keep it: every method is allocation-free.
type StreamMetrics struct {
	ins  *Instruments
	kind attrOpts
	// byTransport is {kind, transport} and onlyTransport {transport}.
	byTransport   [numTransports]attrOpts
	onlyTransport [numTransports]attrOpts
	drops         *cache[string, attrOpts]
}

// Stream returns the handle of a stream kind (cached; beyond 1000 kinds they
// share the "_other" series).
func (i *Instruments) Stream(kind string) *StreamMetrics { return i.streams.get(kind) }

func (i *Instruments) newStreamMetrics(kind string) *StreamMetrics {
	k := KeyStreamKind.String(kind)
	s := &StreamMetrics{ins: i, kind: newAttrOpts(k)}
	for t := range numTransports {
		tr := KeyTransport.String(Transport(t).String())
		s.byTransport[t] = newAttrOpts(k, tr)
		s.onlyTransport[t] = newAttrOpts(tr)
	}
	s.drops = newCache(func(reason string) attrOpts { return newAttrOpts(k, KeyDropReason.String(reason)) }, otherString)
	// Gap and drop series exist from the first use of a kind (at zero), so
	// dashboards and alerts have a series to read before anything is lost.
	ctx := context.Background()
	for _, t := range []Transport{TransportSSE, TransportWS} {
		i.gaps.Add(ctx, 0, s.byTransport[t].add...)
	}
	i.dropped.Add(ctx, 0, s.drops.get(DropBehindHistory).add...)
	i.dropped.Add(ctx, 0, s.drops.get(DropMaxRate).add...)
	return s
}

// DropBehindHistory is the drop reason of events a subscriber skipped with
// a gap: older than the history kept when it resumed or fell behind.
const DropBehindHistory = "behind_history"

// DropMaxRate is the drop reason of events a subscriber's ?max_rate left
// out (each reported to it by a skipped marker).
const DropMaxRate = "max_rate"

func (s *StreamMetrics) tr(t Transport) attrOpts {
	if t >= numTransports {
		t = TransportREST
	}
	return s.byTransport[t]
}

// Published counts n events appended to a stream of this kind.
func (s *StreamMetrics) Published(ctx context.Context, n int) {
	s.ins.published.Add(ctx, int64(n), s.kind.add...)
}

// Delivered counts n events written to a subscriber over t.
func (s *StreamMetrics) Delivered(ctx context.Context, t Transport, n int) {
	s.ins.delivered.Add(ctx, int64(n), s.tr(t).add...)
}

// Dropped counts n events not delivered, with a short fixed reason such as
// "slow_subscriber" (reasons are cached like kinds).
func (s *StreamMetrics) Dropped(ctx context.Context, reason string, n int) {
	s.ins.dropped.Add(ctx, int64(n), s.drops.get(reason).add...)
}

// SubscriberAdded and SubscriberRemoved track connected subscribers; call
// them in pairs (defer the second).
func (s *StreamMetrics) SubscriberAdded(ctx context.Context, t Transport) {
	s.ins.subscribers.Add(ctx, 1, s.tr(t).add...)
}

// SubscriberRemoved is the pair of SubscriberAdded.
func (s *StreamMetrics) SubscriberRemoved(ctx context.Context, t Transport) {
	s.ins.subscribers.Add(ctx, -1, s.tr(t).add...)
}

// Gap counts one gap event sent over t.
func (s *StreamMetrics) Gap(ctx context.Context, t Transport) {
	s.ins.gaps.Add(ctx, 1, s.tr(t).add...)
}

// Write records one coalesced subscriber write of events events and n
// bytes over t (by transport only: sizes do not vary by kind).
func (s *StreamMetrics) Write(ctx context.Context, t Transport, events, bytes int) {
	if t >= numTransports {
		t = TransportREST
	}
	o := s.onlyTransport[t]
	s.ins.writeSize.Record(ctx, int64(events), o.rec...)
	s.ins.writeBytes.Record(ctx, int64(bytes), o.rec...)
}

// PluginMetrics are the synchronous series of one plugin (its RPC
// latency, its emitters' command stages and round trip sizes); state,
// restarts and instances are observed with ObservePlugins.
type PluginMetrics struct {
	ins    *Instruments
	name   attribute.KeyValue
	only   attrOpts // {plugin}
	rpcs   *cache[rpcKey, attrOpts]
	stages *cache[string, attrOpts]
}

type rpcKey struct {
	method string
	failed bool
}

// Plugin returns the handle of a plugin by name (cached).
func (i *Instruments) Plugin(name string) *PluginMetrics { return i.plugins.get(name) }

func (i *Instruments) newPluginMetrics(name string) *PluginMetrics {
	p := &PluginMetrics{ins: i, name: KeyPlugin.String(name)}
	p.only = newAttrOpts(p.name)
	p.stages = newCache(func(stage string) attrOpts { return newAttrOpts(p.name, KeyStage.String(stage)) }, otherString)
	p.rpcs = newCache(func(k rpcKey) attrOpts {
		kvs := []attribute.KeyValue{p.name, attribute.String("rpc.system", "grpc"), attribute.String("rpc.method", k.method)}
		if k.failed {
			kvs = append(kvs, attribute.String("error.type", "error"))
		}
		return newAttrOpts(kvs...)
	}, func(k rpcKey) rpcKey { k.method = otherValue; return k })
	return p
}

// RPC records one call to the plugin: its full gRPC method, duration and
// whether it failed.
func (p *PluginMetrics) RPC(ctx context.Context, method string, d time.Duration, failed bool) {
	p.ins.pluginRPC.Record(ctx, d.Seconds(), p.rpcs.get(rpcKey{method, failed}).rec...)
}

// CommandStage records that n commands to this plugin's emitters each
// spent d in stage ("queue", "plugin" or "commit", in that order; their
// sum is a command's time on the node, HTTP aside).
func (p *PluginMetrics) CommandStage(ctx context.Context, stage string, d time.Duration, n int) {
	o := p.stages.get(stage).rec
	for range n {
		p.ins.cmdDuration.Record(ctx, d.Seconds(), o...)
	}
}

// CommandBatch records one plugin round trip carrying n commands.
func (p *PluginMetrics) CommandBatch(ctx context.Context, n int) {
	p.ins.cmdBatch.Record(ctx, int64(n), p.only.rec...)
}

// PluginSample is one plugin's supervision status at observation time.
type PluginSample struct {
	Name      string
	State     string // one of PluginStates
	Restarts  int64
	Instances int64
}

// ObservePlugins registers fn as the source of the plugin state, restart and
// instance series; it is called on every scrape, so it must be cheap and
// must not block. Call the returned function to unregister.
func (i *Instruments) ObservePlugins(fn func() []PluginSample) (unregister func() error, err error) {
	reg, err := i.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, p := range fn() {
			name := KeyPlugin.String(p.Name)
			for _, st := range PluginStates {
				v := int64(0)
				if st == p.State {
					v = 1
				}
				o.ObserveInt64(i.pluginState, v, metric.WithAttributes(name, KeyPluginState.String(st)))
			}
			o.ObserveInt64(i.pluginRestarts, p.Restarts, metric.WithAttributes(name))
			o.ObserveInt64(i.pluginInstances, p.Instances, metric.WithAttributes(name))
		}
		return nil
	}, i.pluginState, i.pluginRestarts, i.pluginInstances)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() { err = reg.Unregister() })
		return err
	}, nil
}

// httpKey is one series of http.server.request.duration.
type httpKey struct {
	method string
	route  string
	status int
}

func newHTTPOptions(k httpKey) []metric.RecordOption {
	return newAttrOpts(
		attribute.String("http.request.method", k.method),
		attribute.String("http.route", k.route),
		attribute.Int("http.response.status_code", k.status),
	).rec
}

// HTTPRequest records one served request. route is the matched route
// template (Hertz FullPath), never the raw path, so cardinality stays small;
// methods outside the standard set become "_OTHER" as OTel prescribes.
func (i *Instruments) HTTPRequest(ctx context.Context, method, route string, status int, d time.Duration) {
	i.httpDuration.Record(ctx, d.Seconds(), i.http.get(httpKey{normMethod(method), route, status})...)
}

// normMethod keeps the standard methods and folds the rest to "_OTHER".
func normMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return m
	}
	return "_OTHER"
}
