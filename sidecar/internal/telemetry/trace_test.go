package telemetry_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/cloudwego/hertz/pkg/route"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/sidecar/internal/telemetry"
	"github.com/sidestream/sidestream/sidecar/internal/telemetry/telemetrytest"
)

// fakePlugin is a real gRPC server of the plugin contract that remembers
// the trace context it received, as the SDK would extract it.
type fakePlugin struct {
	pluginpb.UnimplementedEmitterServer
	mu  sync.Mutex
	got trace.SpanContext
}

func (p *fakePlugin) Command(ctx context.Context, _ *pluginpb.CommandRequest) (*pluginpb.CommandResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	carrier := propagation.HeaderCarrier{}
	for k, v := range md {
		carrier.Set(k, v[0])
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, carrier))
	p.mu.Lock()
	p.got = sc
	p.mu.Unlock()
	return &pluginpb.CommandResponse{}, nil
}

func (p *fakePlugin) received() trace.SpanContext {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got
}

// startPlugin serves fakePlugin on loopback and dials it with the
// telemetry's dial options, as pluginhost does through go-plugin.
func startPlugin(t *testing.T, tel *telemetry.Telemetry) (*fakePlugin, pluginpb.EmitterClient) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fp := &fakePlugin{}
	pluginpb.RegisterEmitterServer(srv, fp)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		tel.GRPCDialOptions("magic")...)
	conn, err := grpc.NewClient(ln.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return fp, pluginpb.NewEmitterClient(conn)
}

// TestTraceFromHTTPThroughPluginToStore is the trace an operator follows: an HTTP
// request runs a plugin command and commits to the store; the in-memory
// exporter sees one trace with the server span as the parent of both, and
// the plugin received the client span's context in its gRPC metadata.
func TestTraceFromHTTPThroughPluginToStore(t *testing.T) {
	t.Parallel()
	mem := telemetrytest.NewRecorder()
	tel := newTelemetry(t, telemetry.Options{SpanProcessor: mem.Processor()})
	fp, client := startPlugin(t, tel)

	h := newEngine()
	h.Use(tel.HertzMiddleware())
	h.POST("/api/v1/emitters/:id/commands/:name", func(ctx context.Context, c *app.RequestContext) {
		if _, err := client.Command(ctx, &pluginpb.CommandRequest{InstanceId: c.Param("id"), Name: c.Param("name")}); err != nil {
			c.String(500, err.Error())
			return
		}
		_, span := tel.Tracer("store").Start(ctx, "store.commit")
		span.End()
		c.String(200, "ok")
	})
	// The caller's own trace: the server span must continue it.
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const callerSpan = "00f067aa0ba902b7"
	resp := ut.PerformRequest(h, "POST", "/api/v1/emitters/fib/commands/next", nil,
		ut.Header{Key: "traceparent", Value: "00-" + callerTrace + "-" + callerSpan + "-01"})
	if resp.Code != 200 {
		t.Fatalf("status %d: %s", resp.Code, resp.Body.String())
	}

	spans := map[string]telemetrytest.Span{}
	for _, s := range mem.Spans() {
		spans[s.Name] = s
	}
	server, ok := spans["POST /api/v1/emitters/:id/commands/:name"]
	if !ok {
		t.Fatalf("no server span named by route; spans: %v", mem.Spans())
	}
	rpc, ok := spans["sidestream.plugin.v1.Emitter/Command"]
	if !ok {
		t.Fatalf("no plugin call span; spans: %v", mem.Spans())
	}
	store, ok := spans["store.commit"]
	if !ok {
		t.Fatalf("no store span; spans: %v", mem.Spans())
	}
	if got := server.Context.TraceID().String(); got != callerTrace {
		t.Errorf("server span trace %s, want the caller's %s", got, callerTrace)
	}
	if got := server.Parent.SpanID().String(); got != callerSpan || !server.Parent.IsRemote() {
		t.Errorf("server span parent %s (remote %v), want remote %s", got, server.Parent.IsRemote(), callerSpan)
	}
	for _, child := range []telemetrytest.Span{rpc, store} {
		if child.Parent.SpanID() != server.Context.SpanID() || child.Context.TraceID() != server.Context.TraceID() {
			t.Errorf("%s: parent %s trace %s, want child of server span %s", child.Name,
				child.Parent.SpanID(), child.Context.TraceID(), server.Context.SpanID())
		}
	}
	if server.Kind != trace.SpanKindServer || rpc.Kind != trace.SpanKindClient {
		t.Errorf("kinds: server %v, rpc %v", server.Kind, rpc.Kind)
	}
	if server.Attributes["http.route"] != "/api/v1/emitters/:id/commands/:name" || server.Attributes["http.response.status_code"] != "200" {
		t.Errorf("server attributes %v", server.Attributes)
	}
	if rpc.Attributes["sidestream.plugin"] != "magic" {
		t.Errorf("rpc attributes %v", rpc.Attributes)
	}
	got := fp.received()
	if got.TraceID() != server.Context.TraceID() || got.SpanID() != rpc.Context.SpanID() {
		t.Errorf("plugin received trace %s span %s, want %s %s", got.TraceID(), got.SpanID(),
			server.Context.TraceID(), rpc.Context.SpanID())
	}
	// The same request moved the duration metric of its route.
	fams := scrape(t, tel)
	if n := value(t, fams, "http_server_request_duration_seconds", map[string]string{
		"http_route": "/api/v1/emitters/:id/commands/:name", "http_response_status_code": "200"}); n != 1 {
		t.Errorf("request duration count = %v, want 1", n)
	}
	if n := value(t, fams, "rpc_client_call_duration_seconds", map[string]string{"sidestream_plugin": "magic"}); n != 1 {
		t.Errorf("plugin rpc count = %v, want 1", n)
	}
}

func TestServerErrorMarksSpan(t *testing.T) {
	t.Parallel()
	mem := telemetrytest.NewRecorder()
	tel := newTelemetry(t, telemetry.Options{SpanProcessor: mem.Processor()})
	h := newEngine()
	h.Use(tel.HertzMiddleware())
	h.GET("/boom", func(_ context.Context, c *app.RequestContext) { c.String(503, "down") })
	h.GET("/gone", func(_ context.Context, c *app.RequestContext) { c.String(404, "no") })
	ut.PerformRequest(h, "GET", "/boom", nil)
	ut.PerformRequest(h, "GET", "/gone", nil)
	byName := map[string]telemetrytest.Span{}
	for _, s := range mem.Spans() {
		byName[s.Name] = s
	}
	if !byName["GET /boom"].IsError {
		t.Error("5xx span not marked as error")
	}
	if byName["GET /gone"].IsError {
		t.Error("4xx server span marked as error; it is the client's")
	}
}

// Without an OTLP endpoint or memory exporter tracing is off: spans do not
// record and nothing is exported.
func TestNoEndpointMeansNoTracing(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, telemetry.Options{})
	_, span := tel.Tracer("x").Start(context.Background(), "op")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("span records without an exporter configured")
	}
}

// collector is a real OTLP/gRPC trace receiver on loopback.
type collector struct {
	collectorpb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
	auth  []string
}

func (c *collector) Export(ctx context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = append(c.auth, md.Get("authorization")...)
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func TestOTLPExportWhenEndpointSet(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	col := &collector{}
	collectorpb.RegisterTraceServiceServer(srv, col)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { srv.Stop(); <-served }()

	tel, err := telemetry.New(context.Background(), telemetry.Options{
		OTLPEndpoint: "http://" + ln.Addr().String(),
		OTLPHeaders:  map[string]string{"authorization": "Bearer s3cret"},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer("x").Start(context.Background(), "exported-op")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tel.Close(ctx); err != nil { // flushes the batcher
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.names) != 1 || col.names[0] != "exported-op" {
		t.Errorf("collector got spans %v, want [exported-op]", col.names)
	}
	if len(col.auth) == 0 || col.auth[0] != "Bearer s3cret" {
		t.Errorf("collector got authorization %v", col.auth)
	}
}

// newEngine is a real Hertz router driven in process (no socket).
func newEngine() *route.Engine {
	return route.NewEngine(config.NewOptions([]config.Option{{F: func(o *config.Options) { o.DisablePrintRoute = true }}}))
}
