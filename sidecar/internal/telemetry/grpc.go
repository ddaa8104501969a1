package telemetry

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// GRPCScope is the instrumentation scope of plugin call spans.
const GRPCScope = ScopeName + "/plugin"

// GRPCDialOptions are the dial options for the gRPC connection to a plugin
// (go-plugin's ClientConfig.GRPCDialOptions). Every call of the plugin
// contract gets a client span, its trace context injected into the outgoing
// metadata ("traceparent", "tracestate", "baggage") so it crosses into the
// plugin, and an rpc.client.call.duration measurement labelled by plugin.
// go-plugin's own services (health, broker, controller, stdio) are left
// alone: they are plumbing, not calls a user made.
func (t *Telemetry) GRPCDialOptions(plugin string) []grpc.DialOption {
	g := &grpcClient{t: t, tracer: t.Tracer(GRPCScope), pm: t.ins.Plugin(plugin), plugin: plugin}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(g.unary),
		grpc.WithChainStreamInterceptor(g.stream),
	}
}

type grpcClient struct {
	t      *Telemetry
	tracer trace.Tracer
	pm     *PluginMetrics
	plugin string
}

// traced reports whether method belongs to the plugin contract rather than
// go-plugin's internal services.
func traced(method string) bool {
	return !strings.HasPrefix(method, "/plugin.") && !strings.HasPrefix(method, "/grpc.health.")
}

func (g *grpcClient) start(ctx context.Context, method string) (context.Context, trace.Span) {
	name := strings.TrimPrefix(method, "/")
	ctx, span := g.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.method", name),
			KeyPlugin.String(g.plugin),
		))
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	g.t.prop.Inject(ctx, mdCarrier(md))
	return metadata.NewOutgoingContext(ctx, md), span
}

func (g *grpcClient) end(ctx context.Context, span trace.Span, method string, start time.Time, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	g.pm.RPC(ctx, strings.TrimPrefix(method, "/"), time.Since(start), err != nil)
}

func (g *grpcClient) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !traced(method) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	start := time.Now()
	ctx, span := g.start(ctx, method)
	err := invoker(ctx, method, req, reply, cc, opts...)
	g.end(ctx, span, method, start, err)
	return err
}

// stream spans only the opening of a stream: Run streams live as long as
// the emitter, and a span of hours helps nobody. The plugin still receives
// the trace context in the stream's metadata.
func (g *grpcClient) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if !traced(method) {
		return streamer(ctx, desc, cc, method, opts...)
	}
	start := time.Now()
	sctx, span := g.start(ctx, method)
	cs, err := streamer(sctx, desc, cc, method, opts...)
	g.end(sctx, span, method, start, err)
	return cs, err
}

// mdCarrier adapts gRPC metadata to the OTel propagator.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
