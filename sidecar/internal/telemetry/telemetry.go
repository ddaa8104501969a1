// Package telemetry is the only package that touches the OpenTelemetry SDK
// and its exporters. It builds one meter provider (exposed as Prometheus text
// through the OTel Prometheus exporter) and one tracer provider (OTLP/gRPC
// when an endpoint is configured, a test span processor, otherwise none), and
// hands everything else OTel *API* types: metric.Meter, trace.Tracer, the
// ready-made Instruments, a Hertz middleware and gRPC client options.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	promexp "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of sidestream's own instruments.
const ScopeName = "github.com/sidestream/sidestream"

// Options configure New. The zero value is valid: metrics only, no traces.
type Options struct {
	// ServiceName and ServiceVersion become the service.name and
	// service.version resource attributes ("sidestream" and "dev" if empty).
	ServiceName    string
	ServiceVersion string
	// OTLPEndpoint, if set, exports traces over OTLP/gRPC to this URL
	// (e.g. http://collector:4317; http means no TLS). Empty means no OTLP
	// export. Config resolves OTEL_EXPORTER_OTLP_ENDPOINT into it.
	OTLPEndpoint string
	// OTLPHeaders are sent with every export (often credentials).
	OTLPHeaders map[string]string
	// SampleRatio is the fraction of root traces sampled (0 means 1: all);
	// children follow their parent's decision.
	SampleRatio float64
	// SpanProcessor, if set, receives every ended span, with or without
	// OTLP. Only tests set it (telemetrytest.Recorder), so no test
	// exporter is linked into the binary.
	SpanProcessor SpanProcessor
}

// SpanProcessor is the SDK's span hook, named here so callers outside this
// package (the app's tests) need not import the SDK.
type SpanProcessor = sdktrace.SpanProcessor

// Telemetry owns the SDK providers. Close flushes and stops them.
type Telemetry struct {
	log        *slog.Logger
	meters     *sdkmetric.MeterProvider
	tracers    trace.TracerProvider
	sdkTracers *sdktrace.TracerProvider // nil when tracing is off
	registry   *prometheus.Registry
	handler    http.Handler
	prop       propagation.TextMapPropagator
	ins        *Instruments
}

// New builds the providers. It starts no exporter connection eagerly: the
// OTLP exporter dials lazily, so a collector that is down does not stop the
// sidecar (spans are dropped and the SDK logs the export error).
func New(ctx context.Context, opts Options, log *slog.Logger) (*Telemetry, error) {
	res, err := newResource(opts)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{
		log:      log,
		registry: prometheus.NewRegistry(),
		prop:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	exp, err := promexp.New(
		promexp.WithRegisterer(t.registry),
		promexp.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		promexp.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t.meters = sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(exp),
	)
	t.handler = promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
	if err := t.newTracing(ctx, opts, res); err != nil {
		_ = t.meters.Shutdown(ctx)
		return nil, err
	}
	t.ins, err = newInstruments(t.meters.Meter(ScopeName))
	if err != nil {
		_ = t.Close(ctx)
		return nil, err
	}
	return t, nil
}

func newResource(opts Options) (*resource.Resource, error) {
	name, ver := opts.ServiceName, opts.ServiceVersion
	if name == "" {
		name = "sidestream"
	}
	if ver == "" {
		ver = "dev"
	}
	// No schema URL: merging with the default resource must not conflict.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", name), attribute.String("service.version", ver)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

func (t *Telemetry) newTracing(ctx context.Context, opts Options, res *resource.Resource) error {
	if opts.OTLPEndpoint == "" && opts.SpanProcessor == nil {
		t.tracers = noop.NewTracerProvider()
		return nil
	}
	ratio := opts.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if opts.OTLPEndpoint != "" {
		exp, err := otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpointURL(opts.OTLPEndpoint),
			otlptracegrpc.WithHeaders(opts.OTLPHeaders),
		)
		if err != nil {
			return fmt.Errorf("telemetry: otlp trace exporter for %s: %w", opts.OTLPEndpoint, err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		t.log.Info("exporting traces over OTLP", "endpoint", opts.OTLPEndpoint)
	}
	if opts.SpanProcessor != nil {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(opts.SpanProcessor))
	}
	t.sdkTracers = sdktrace.NewTracerProvider(tpOpts...)
	t.tracers = t.sdkTracers
	return nil
}

// Close flushes pending spans and metrics and stops the providers.
func (t *Telemetry) Close(ctx context.Context) error {
	var errs []error
	if t.sdkTracers != nil {
		if err := t.sdkTracers.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: tracer provider: %w", err))
		}
	}
	if err := t.meters.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: meter provider: %w", err))
	}
	return errors.Join(errs...)
}

// MetricsHandler serves the Prometheus text exposition of every metric.
func (t *Telemetry) MetricsHandler() http.Handler { return t.handler }

// Meter returns a meter of the SDK provider for a package's own instruments.
func (t *Telemetry) Meter(name string) metric.Meter { return t.meters.Meter(name) }

// Tracer returns a tracer; a no-op one when tracing is off.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.tracers.Tracer(name) }

// Tracing reports whether spans are recorded (an OTLP endpoint or an
// in-memory exporter is configured); callers skip building spans if not.
func (t *Telemetry) Tracing() bool { return t.sdkTracers != nil }

// TracerProvider returns the tracer provider (no-op when tracing is off).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracers }

// Propagator is the W3C trace-context + baggage propagator used on HTTP and
// gRPC boundaries.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// Instruments returns the ready-made instruments of the named series.
func (t *Telemetry) Instruments() *Instruments { return t.ins }
