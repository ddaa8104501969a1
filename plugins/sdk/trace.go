package sdk

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// The host injects W3C trace context into every call's gRPC metadata.
// The SDK puts it into the ctx the plugin receives, and the SDK's logger
// adds trace_id and span_id to lines logged with that ctx, so a plugin's
// log lines join the trace of the HTTP request that caused them.

var propagator = propagation.TraceContext{}

// mdCarrier reads gRPC metadata, whose keys are lower case (a
// propagation.HeaderCarrier would canonicalize them and find nothing).
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

// withRemoteTrace returns ctx carrying the caller's span context, if any.
func withRemoteTrace(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	return propagator.Extract(ctx, mdCarrier(md))
}

func traceUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(withRemoteTrace(ctx), req)
}

func traceStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, tracedStream{ServerStream: ss, ctx: withRemoteTrace(ss.Context())})
}

type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s tracedStream) Context() context.Context { return s.ctx }

// grpcServer is go-plugin's server factory with trace extraction added.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.ChainUnaryInterceptor(traceUnary), grpc.ChainStreamInterceptor(traceStream),
		grpc.InitialWindowSize(pluginpb.PipeWindow), grpc.InitialConnWindowSize(pluginpb.PipeWindow),
		grpc.ReadBufferSize(pluginpb.PipeBuffer), grpc.WriteBufferSize(pluginpb.PipeBuffer))
	return grpc.NewServer(opts...)
}

// traceHandler adds trace_id and span_id to records logged with a ctx
// that carries a span context.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
