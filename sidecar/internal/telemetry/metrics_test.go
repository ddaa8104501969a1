package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/sidecar/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTelemetry(t testing.TB, opts telemetry.Options) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.New(context.Background(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() {
		if err := tel.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tel
}

// scrape fetches /metrics through the handler and parses the text format.
func scrape(t *testing.T, tel *telemetry.Telemetry) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, rec.Body.String())
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include want; histograms give their sample count.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
next:
	for _, m := range fam.GetMetric() {
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
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("%s has no series with labels %v", name, want)
	return 0
}

func TestMetricsHandlerExposesNamedSeries(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, telemetry.Options{})
	ins := tel.Instruments()
	ctx := context.Background()

	magic := ins.Stream("magic")
	magic.SubscriberAdded(ctx, telemetry.TransportSSE)
	magic.SubscriberAdded(ctx, telemetry.TransportSSE)
	magic.SubscriberAdded(ctx, telemetry.TransportWS)
	magic.SubscriberRemoved(ctx, telemetry.TransportSSE)
	magic.Published(ctx, 3)
	magic.Delivered(ctx, telemetry.TransportSSE, 5)
	magic.Dropped(ctx, "slow_subscriber", 2)
	magic.Gap(ctx, telemetry.TransportSSE)
	magic.Write(ctx, telemetry.TransportSSE, 4, 512)
	ins.Stream("fibonacci").Published(ctx, 1)
	ins.Plugin("magic").RPC(ctx, "sidestream.plugin.v1.Emitter/Command", time.Millisecond, false)
	ins.StoreCommit(ctx, 700*time.Microsecond, 12)
	fib := ins.Plugin("fibonacci")
	fib.CommandStage(ctx, "queue", 300*time.Microsecond, 1)
	fib.CommandStage(ctx, "plugin", 500*time.Microsecond, 4) // one round trip of four commands
	fib.CommandBatch(ctx, 4)
	ins.QueueDepth(ctx, "orders", 7)
	ins.QueueClaimed(ctx, "orders", 2)
	ins.HTTPRequest(ctx, "GET", "/api/v1/emitters/:id", 200, 3*time.Millisecond)
	ins.HTTPRequest(ctx, "BREW", "/api/v1/emitters/:id", 405, time.Millisecond)
	ins.ConnsRefused(ctx, "max_connections", 2)
	ins.ConnsRefused(ctx, "accept_failed", 0)
	unregister, err := ins.ObservePlugins(func() []telemetry.PluginSample {
		return []telemetry.PluginSample{{Name: "magic", State: "running", Restarts: 2, Instances: 3}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()

	fams := scrape(t, tel)
	for _, name := range telemetry.PrometheusNames {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sidestream_stream_subscribers", map[string]string{"sidestream_stream_kind": "magic", "sidestream_transport": "sse"}, 1},
		{"sidestream_stream_subscribers", map[string]string{"sidestream_stream_kind": "magic", "sidestream_transport": "ws"}, 1},
		{"sidestream_events_published_total", map[string]string{"sidestream_stream_kind": "magic"}, 3},
		{"sidestream_events_published_total", map[string]string{"sidestream_stream_kind": "fibonacci"}, 1},
		{"sidestream_events_delivered_total", map[string]string{"sidestream_transport": "sse"}, 5},
		{"sidestream_events_dropped_total", map[string]string{"sidestream_drop_reason": "slow_subscriber"}, 2},
		{"sidestream_stream_gaps_total", map[string]string{"sidestream_stream_kind": "magic", "sidestream_transport": "sse"}, 1},
		{"sidestream_stream_gaps_total", map[string]string{"sidestream_stream_kind": "fibonacci", "sidestream_transport": "sse"}, 0}, // exists at zero
		{"sidestream_events_dropped_total", map[string]string{"sidestream_stream_kind": "fibonacci", "sidestream_drop_reason": telemetry.DropBehindHistory}, 0},
		{"sidestream_events_dropped_total", map[string]string{"sidestream_stream_kind": "fibonacci", "sidestream_drop_reason": telemetry.DropMaxRate}, 0},
		{"sidestream_stream_write_size", map[string]string{"sidestream_transport": "sse"}, 1},
		{"sidestream_stream_write_bytes", map[string]string{"sidestream_transport": "sse"}, 1},
		{"rpc_client_call_duration_seconds", map[string]string{"sidestream_plugin": "magic", "rpc_method": "sidestream.plugin.v1.Emitter/Command"}, 1},
		{"sidestream_store_commit_duration_seconds", nil, 1},
		{"sidestream_store_commit_size", nil, 1},
		{"sidestream_command_duration_seconds", map[string]string{"sidestream_plugin": "fibonacci", "sidestream_command_stage": "queue"}, 1},
		{"sidestream_command_duration_seconds", map[string]string{"sidestream_plugin": "fibonacci", "sidestream_command_stage": "plugin"}, 4},
		{"sidestream_command_batch_size", map[string]string{"sidestream_plugin": "fibonacci"}, 1},
		{"sidestream_http_connections_refused_total", map[string]string{"sidestream_reason": "max_connections"}, 2},
		{"sidestream_http_connections_refused_total", map[string]string{"sidestream_reason": "accept_failed"}, 0},
		{"sidestream_queue_depth", map[string]string{"sidestream_queue": "orders"}, 7},
		{"sidestream_queue_claims_total", map[string]string{"sidestream_queue": "orders"}, 2},
		{"http_server_request_duration_seconds", map[string]string{"http_route": "/api/v1/emitters/:id", "http_request_method": "GET", "http_response_status_code": "200"}, 1},
		{"http_server_request_duration_seconds", map[string]string{"http_request_method": "_OTHER", "http_response_status_code": "405"}, 1},
		{"sidestream_plugin_state", map[string]string{"sidestream_plugin": "magic", "sidestream_plugin_state": "running"}, 1},
		{"sidestream_plugin_state", map[string]string{"sidestream_plugin": "magic", "sidestream_plugin_state": "failed"}, 0},
		{"sidestream_plugin_restarts_total", map[string]string{"sidestream_plugin": "magic"}, 2},
		{"sidestream_plugin_instances", map[string]string{"sidestream_plugin": "magic"}, 3},
	}
	for _, tc := range tests {
		if got := value(t, fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if sum := fams["sidestream_store_commit_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); sum != 0.0007 {
		t.Errorf("store commit duration sum = %v s, want 0.0007 (seconds, not ms)", sum)
	}
}

func TestObservePluginsUnregisterStopsReporting(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, telemetry.Options{})
	restarts := int64(0)
	unregister, err := tel.Instruments().ObservePlugins(func() []telemetry.PluginSample {
		restarts++
		return []telemetry.PluginSample{{Name: "time", State: "restarting", Restarts: restarts}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, scrape(t, tel), "sidestream_plugin_restarts_total", map[string]string{"sidestream_plugin": "time"}); got != 1 {
		t.Fatalf("restarts after first scrape = %v, want 1", got)
	}
	if got := value(t, scrape(t, tel), "sidestream_plugin_restarts_total", map[string]string{"sidestream_plugin": "time"}); got != 2 {
		t.Fatalf("restarts after second scrape = %v, want 2 (observed per scrape)", got)
	}
	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	if err := unregister(); err != nil {
		t.Fatalf("second unregister: %v", err)
	}
	scrape(t, tel)
	if restarts != 2 {
		t.Errorf("callback ran %d times, want 2: unregister did not stop it", restarts)
	}
}

// A flood of distinct names (queues here) must not grow the series without
// bound: past the cache limit they share the "_other" series.
func TestCardinalityIsBounded(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, telemetry.Options{})
	ctx := context.Background()
	const n = 1500
	for i := range n {
		tel.Instruments().QueueClaimed(ctx, fmt.Sprintf("q%d", i), 1)
	}
	fams := scrape(t, tel)
	series := fams["sidestream_queue_claims_total"].GetMetric()
	if len(series) > 1001 {
		t.Errorf("%d queue series, want at most 1001", len(series))
	}
	if got := value(t, fams, "sidestream_queue_claims_total", map[string]string{"sidestream_queue": "_other"}); got != n-1000 {
		t.Errorf("_other claims = %v, want %d", got, n-1000)
	}
	if got := value(t, fams, "sidestream_queue_claims_total", map[string]string{"sidestream_queue": "q0"}); got != 1 {
		t.Errorf("q0 claims = %v, want 1", got)
	}
}

func TestUnknownTransportDoesNotPanic(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, telemetry.Options{})
	s := tel.Instruments().Stream("x")
	s.Delivered(context.Background(), telemetry.Transport(200), 1)
	s.Write(context.Background(), telemetry.Transport(200), 1, 1)
	if got := telemetry.Transport(200).String(); got != "unknown" {
		t.Errorf("String() = %q", got)
	}
}
