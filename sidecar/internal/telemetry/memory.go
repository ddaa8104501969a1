package telemetry

import (
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// MemoryExporter keeps ended spans in memory, for tests anywhere in the
// module (which may not import the SDK themselves): pass it in
// Options.Memory and read Spans.
type MemoryExporter struct{ exp *tracetest.InMemoryExporter }

// NewMemoryExporter returns an empty in-memory span exporter.
func NewMemoryExporter() *MemoryExporter {
	return &MemoryExporter{exp: tracetest.NewInMemoryExporter()}
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
func (m *MemoryExporter) Spans() []Span {
	stubs := m.exp.GetSpans()
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
func (m *MemoryExporter) Reset() { m.exp.Reset() }
