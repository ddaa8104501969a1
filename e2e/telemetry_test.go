package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Secrets used by the tests below; none may ever be printed or logged.
const (
	e2eJWTSecret  = "e2e-hs256-secret-that-is-long-enough-0123"
	e2eOTLPHeader = "otlp-bearer-e2e-7f3a"
)

// runConfigPrint runs `sidestream config print` with extra environment and
// arguments and returns stdout, stderr and the exit code.
func runConfigPrint(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"config", "print"}, args...)...)
	cmd.Env = append(os.Environ(), "SIDESTREAM_CONFIG=")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run config print: %v", err)
		}
		code = exit.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// `config print` shows the effective configuration with every layer
// applied, and secrets from env and file redacted.
func TestConfigPrintRedactsSecrets(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sidestream.yaml")
	body := "data_dir: /from/file\nlisten: 127.0.0.1:7001\nauth:\n  jwt_secret: file-" + e2eJWTSecret + "\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runConfigPrint(t, []string{
		"SIDESTREAM_AUTH_JWT_SECRET=" + e2eJWTSecret,
		"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer " + e2eOTLPHeader,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector.example:4317",
		"SIDESTREAM_LISTEN=127.0.0.1:7002",
	}, "--config", file, "--listen", "127.0.0.1:7003")
	if code != 0 {
		t.Fatalf("config print exited %d: %s", code, stderr)
	}
	for _, secret := range []string{e2eJWTSecret, e2eOTLPHeader} {
		if strings.Contains(out+stderr, secret) {
			t.Errorf("config print shows a secret:\n%s%s", out, stderr)
		}
	}
	for _, want := range []string{
		"listen: 127.0.0.1:7003",                       // flag over env over file
		"data_dir: /from/file",                         // file over default
		"otlp_endpoint: http://collector.example:4317", // standard OTel env
		"jwt_secret: '[redacted]'",                     // set, but hidden
		"authorization: '[redacted]'",                  // header names stay
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
}

// An invalid configuration fails with every bad field named, and the error
// does not quote a rejected secret either.
func TestConfigPrintNamesInvalidFields(t *testing.T) {
	t.Parallel()
	_, stderr, code := runConfigPrint(t, []string{"SIDESTREAM_AUTH_JWT_SECRET=short-" + e2eOTLPHeader},
		"--log-level", "loud", "--otlp-endpoint", "collector:4317")
	if code == 0 {
		t.Fatal("invalid configuration accepted")
	}
	for _, field := range []string{"log_level:", "telemetry.otlp_endpoint:", "auth.jwt_secret:"} {
		if !strings.Contains(stderr, field) {
			t.Errorf("error lacks %s:\n%s", field, stderr)
		}
	}
	if strings.Contains(stderr, e2eOTLPHeader) {
		t.Errorf("error quotes the secret:\n%s", stderr)
	}
}

// The serving sidecar never logs a secret it was configured with.
func TestServeLogsNoSecrets(t *testing.T) {
	t.Setenv("SIDESTREAM_AUTH_JWT_SECRET", e2eJWTSecret)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer "+e2eOTLPHeader)
	sc := startSidecar(t, t.TempDir())
	do(t, http.MethodGet, sc.URL("/healthz"), "", nil)
	if code := sc.Stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for _, secret := range []string{e2eJWTSecret, e2eOTLPHeader} {
		if strings.Contains(sc.Logs(), secret) {
			t.Errorf("logs hold a secret:\n%s", sc.Logs())
		}
	}
}

// scrapeMetrics fetches and parses /metrics.
func scrapeMetrics(t *testing.T, sc *sidecar) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(sc.URL("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue sums the series of name whose labels include want (counters
// and gauges by value, histograms by sample count); 0 if none.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
next:
	for _, m := range fams[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func fibStage(stage string) map[string]string {
	return map[string]string{"sidestream_plugin": "fibonacci", "sidestream_command_stage": stage}
}

// After a short scenario (subscribe, publish, fib nexts, kill a plugin) /metrics holds
// the named series and their values moved as expected. Needs the telemetry
// wiring in sidecar/internal/app (see the telemetry package).
func TestMetricsAfterSubscribePublishAndPluginRestart(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	before := scrapeMetrics(t, sc)
	restartsBefore := metricValue(before, "sidestream_plugin_restarts_total", map[string]string{"sidestream_plugin": "log"})

	var created struct{ ID string }
	if code := do(t, http.MethodPut, sc.URL("/log"), `{"source":"synthetic","rate":200}`, &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	const nexts = 3
	for range nexts {
		if code := do(t, http.MethodPost, sc.URL("/fib/next"), "", nil); code != http.StatusOK {
			t.Fatalf("POST /fib/next: %d", code)
		}
	}
	sse := openSSE(t, sc.URL("/sse/log/"+created.ID), "")
	read := func(n int) {
		for range n {
			if _, err := sse.Next(); err != nil {
				t.Fatal(err)
			}
		}
	}
	read(20)
	pids := pluginPIDs(t, "log", sc.cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("want one log plugin process, found %v", pids)
	}
	killProcess(t, pids[0])
	read(100) // spans the restart
	logKind := map[string]string{"sidestream_stream_kind": "log"}
	sseLog := map[string]string{"sidestream_stream_kind": "log", "sidestream_transport": "sse"}
	logPlugin := map[string]string{"sidestream_plugin": "log"}

	var fams map[string]*dto.MetricFamily
	// The delivered counter moves after the write the client already read,
	// so it is waited for too, not read once.
	eventually(t, "plugin log back to running and 120 deliveries in /metrics", 30*time.Second, func() bool {
		fams = scrapeMetrics(t, sc)
		return metricValue(fams, "sidestream_plugin_state", map[string]string{"sidestream_plugin": "log", "sidestream_plugin_state": "running"}) == 1 &&
			metricValue(fams, "sidestream_events_delivered_total", sseLog) >= 120
	})
	checks := []struct {
		what  string
		name  string
		attrs map[string]string
		min   float64
	}{
		{"open SSE subscriber", "sidestream_stream_subscribers", sseLog, 1},
		{"events published", "sidestream_events_published_total", logKind, 120},
		{"events delivered over SSE", "sidestream_events_delivered_total", sseLog, 120},
		{"coalesced SSE writes", "sidestream_stream_write_size", map[string]string{"sidestream_transport": "sse"}, 1},
		{"coalesced SSE bytes", "sidestream_stream_write_bytes", map[string]string{"sidestream_transport": "sse"}, 1},
		{"plugin restarts", "sidestream_plugin_restarts_total", logPlugin, restartsBefore + 1},
		{"plugin instances", "sidestream_plugin_instances", logPlugin, 1},
		{"plugin RPCs", "rpc_client_call_duration_seconds", logPlugin, 1},
		{"store commits", "sidestream_store_commit_duration_seconds", nil, 1},
		{"store batch sizes", "sidestream_store_commit_size", nil, 1},
		{"fib commands' queue stage", "sidestream_command_duration_seconds", fibStage("queue"), nexts},
		{"fib commands' plugin stage", "sidestream_command_duration_seconds", fibStage("plugin"), nexts},
		{"fib commands' commit stage", "sidestream_command_duration_seconds", fibStage("commit"), nexts},
		{"fib round trips", "sidestream_command_batch_size", map[string]string{"sidestream_plugin": "fibonacci"}, 1},
		{"PUT /log request", "http_server_request_duration_seconds", map[string]string{
			"http_route": "/log", "http_request_method": "PUT", "http_response_status_code": "201"}, 1},
	}
	for _, c := range checks {
		if got := metricValue(fams, c.name, c.attrs); got < c.min {
			t.Errorf("%s: %s%v = %v, want >= %v", c.what, c.name, c.attrs, got, c.min)
		}
	}
	// Gap and drop counters exist from the start (zero until something
	// happens), so dashboards and alerts have a series to read.
	for _, name := range []string{"sidestream_stream_gaps_total", "sidestream_events_dropped_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	sse.Close()
	eventually(t, "subscriber gauge back to 0 after the client left", 30*time.Second, func() bool {
		return metricValue(scrapeMetrics(t, sc), "sidestream_stream_subscribers", sseLog) == 0
	})
}
