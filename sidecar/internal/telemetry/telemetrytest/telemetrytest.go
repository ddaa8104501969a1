// Package telemetrytest records ended spans in memory for tests anywhere in
// the module (which may not import the OTel SDK themselves). Only tests
// import it: the architecture test fails if it, or the SDK's tracetest it
// wraps, is linked into the sidestream binary.
package telemetrytest

import (
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidestream/sidestream/sidecar/internal/telemetry"
)

// Recorder keeps ended spans in memory: pass Processor() as
// telemetry.Options.SpanProcessor (or app.Options.SpanProcessor) and read
// Spans.
type Recorder struct{ exp *tracetest.InMemoryExporter }

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{exp: tracetest.NewInMemoryExporter()}
}

// Processor hands every ended span to the recorder synchronously.
func (r *Recorder) Processor() telemetry.SpanProcessor {
	return sdktrace.NewSimpleSpanProcessor(r.exp)
}

// Span is an ended span as a test sees it.
type Span struct {
	Name       string
	Kind       trace.SpanKind
	Context    trace.SpanContext
	Parent     trace.SpanContext
	Attributes map[string]string
	// Error is the status description when the span ended in error.
	Error   string
	IsError bool
}

// Spans returns every span ended so far, in the order they ended.
func (r *Recorder) Spans() []Span {
	stubs := r.exp.GetSpans()
	out := make([]Span, len(stubs))
	for i, s := range stubs {
		attrs := make(map[string]string, len(s.Attributes))
		for _, kv := range s.Attributes {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		out[i] = Span{Name: s.Name, Kind: s.SpanKind, Context: s.SpanContext, Parent: s.Parent,
			Attributes: attrs, Error: s.Status.Description, IsError: s.Status.Code == codes.Error}
	}
	return out
}

// Reset forgets the spans recorded so far.
func (r *Recorder) Reset() { r.exp.Reset() }
