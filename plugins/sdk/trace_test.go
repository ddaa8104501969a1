package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// tracedPlugin logs from Command with the ctx it was given.
type tracedPlugin struct{ log *slog.Logger }

func (tracedPlugin) Describe() Description {
	return Description{Name: "traced", Version: "1", ConfigSchema: json.RawMessage(`{"type":"object"}`)}
}

func (tracedPlugin) Validate(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	return c, nil
}

func (tracedPlugin) Run(ctx context.Context, _ Instance, _ Output) error {
	<-ctx.Done()
	return nil
}

func (p tracedPlugin) Command(ctx context.Context, _ Instance, name string, _ json.RawMessage) (CommandResult, error) {
	p.log.InfoContext(ctx, "command ran", "name", name)
	return CommandResult{Result: json.RawMessage(`{}`)}, nil
}

// syncBuffer is a log sink safe for the gRPC server goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// The trace context the host puts in gRPC metadata reaches the plugin's
// ctx through the SDK's server, and the SDK's log handler writes its ids.
func TestTraceContextReachesPluginLogs(t *testing.T) {
	if _, ok := Logger().Handler().(traceHandler); !ok {
		t.Fatalf("sdk.Logger's handler is %T, want the trace-aware handler", Logger().Handler())
	}
	var out syncBuffer
	p := tracedPlugin{log: slog.New(traceHandler{slog.NewJSONHandler(&out, nil)})}

	lis := bufconn.Listen(1 << 20)
	srv := grpcServer(nil)
	pluginpb.RegisterEmitterServer(srv, NewServer(p, nil))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///buf",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(); srv.Stop() }()

	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-"+spanID+"-01")
	if _, err := pluginpb.NewEmitterClient(conn).Command(ctx, &pluginpb.CommandRequest{InstanceId: "i", Name: "go"}); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Msg     string `json:"msg"`
		TraceID string `json:"trace_id"`
		SpanID  string `json:"span_id"`
	}
	out.mu.Lock()
	raw := out.b.Bytes()
	out.mu.Unlock()
	if err := json.Unmarshal(bytes.TrimSpace(raw), &line); err != nil {
		t.Fatalf("log line %q: %v", raw, err)
	}
	if line.Msg != "command ran" || line.TraceID != traceID || line.SpanID != spanID {
		t.Fatalf("log line %+v lacks the caller's trace (want trace %s span %s)", line, traceID, spanID)
	}
}
