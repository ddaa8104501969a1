package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/sidecar/internal/config"
	"github.com/sidestream/sidestream/sidecar/internal/telemetry/telemetrytest"
)

// exe is the real sidestream binary: the app re-executes it to serve the
// built-in plugins, exactly as in production.
var exe string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sidestream-app-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exe = filepath.Join(dir, "sidestream")
	if out, err := exec.Command("go", "build", "-o", exe, "../../cmd/sidestream").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sidestream: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Hertz keeps one process-wide goroutine refreshing the Date header.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol.UpdateServerDate.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// One trace runs from an HTTP request through the plugin command (over
// gRPC, into a real plugin process) to the store commit that made it
// durable, and Run shuts everything down cleanly when its ctx ends.
func TestTraceFromHTTPThroughPluginToStoreCommit(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	spans := telemetrytest.NewRecorder()
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{
			Exe: exe, Builtins: []string{"fibonacci", "log", "magic", "time"},
			Ready: func(addr string) { ready <- addr }, SpanProcessor: spans.Processor(),
		}, slog.New(slog.DiscardHandler))
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Run ended before serving: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not serving after 60s")
	}

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/fib/next", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /fib/next: %d", resp.StatusCode)
	}

	// Read before Run returns: closing telemetry empties the exporter.
	got := spans.Spans()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after its ctx ended")
	}
	assertTraceChain(t, got, traceID)
}

// assertTraceChain finds the server span of the request, the plugin
// Command call below it and a store commit below it, all in one trace.
func assertTraceChain(t *testing.T, spans []telemetrytest.Span, traceID string) {
	t.Helper()
	byID := map[string]telemetrytest.Span{}
	for _, s := range spans {
		if s.Context.TraceID().String() == traceID {
			byID[s.Context.SpanID().String()] = s
		}
	}
	under := func(s telemetrytest.Span, ancestor string) bool {
		for i := 0; i < 16 && s.Parent.IsValid(); i++ {
			if s.Parent.SpanID().String() == ancestor {
				return true
			}
			p, ok := byID[s.Parent.SpanID().String()]
			if !ok {
				return false
			}
			s = p
		}
		return false
	}
	var server, command, commit *telemetrytest.Span
	for _, s := range byID {
		switch {
		case s.Name == "POST /fib/next" || s.Attributes["http.route"] == "/fib/next":
			server = &s
		case s.Name == "sidestream.plugin.v1.Emitter/Command":
			command = &s
		case s.Name == "store.commit":
			commit = &s
		}
	}
	if server == nil || command == nil || commit == nil {
		names := []string{}
		for _, s := range byID {
			names = append(names, s.Name)
		}
		t.Fatalf("trace %s lacks a span: server %v, command %v, commit %v; has %v", traceID, server != nil, command != nil, commit != nil, names)
	}
	sid := server.Context.SpanID().String()
	if !under(*command, sid) || !under(*commit, sid) {
		t.Fatalf("command or commit span is not below the request's span")
	}
}
