package telemetry

import (
	"context"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/protocol"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// HTTPScope is the instrumentation scope of HTTP server spans.
const HTTPScope = ScopeName + "/http"

// HertzMiddleware returns a Hertz handler that, for every request, extracts
// a W3C trace context from the headers, runs the rest of the chain inside a
// server span named "METHOD route", and records http.server.request.duration
// by method, route template (c.FullPath()) and status. Register it first
// (server.Use) so it sees the final status. Handlers start child spans from
// the context.Context they receive.
func (t *Telemetry) HertzMiddleware() app.HandlerFunc {
	if !t.Tracing() {
		// No span to make: skip the propagator, the span options and
		// the attributes, which allocate even for a no-op tracer.
		return func(ctx context.Context, c *app.RequestContext) {
			start := time.Now()
			c.Next(ctx)
			t.ins.HTTPRequest(ctx, normMethod(string(c.Method())), c.FullPath(), c.Response.StatusCode(), time.Since(start))
		}
	}
	tracer := t.Tracer(HTTPScope)
	return func(ctx context.Context, c *app.RequestContext) {
		start := time.Now()
		method := normMethod(string(c.Method()))
		route := c.FullPath()
		ctx = t.prop.Extract(ctx, headerCarrier{&c.Request.Header})
		name := method
		if route != "" {
			name = method + " " + route
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", method),
				attribute.String("http.route", route),
				attribute.String("url.path", string(c.Path())),
			))
		c.Next(ctx)
		status := c.Response.StatusCode()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			// Server spans: only 5xx is an error (4xx is the client's).
			span.SetStatus(codes.Error, "")
		}
		span.End()
		t.ins.HTTPRequest(ctx, method, route, status, time.Since(start))
	}
}

// headerCarrier adapts Hertz request headers to the OTel propagator.
type headerCarrier struct{ h *protocol.RequestHeader }

func (c headerCarrier) Get(key string) string { return string(c.h.Peek(key)) }

func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }

func (c headerCarrier) Keys() []string {
	var keys []string
	c.h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}
