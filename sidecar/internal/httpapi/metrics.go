package httpapi

import (
	"context"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/adaptor"

	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// Transports as Metrics sees them.
const (
	TransportSSE = "sse"
	TransportWS  = "ws"
)

// Metrics observes the API's stream subscribers (telemetry implements it).
type Metrics interface {
	// Subscriber is called when a subscriber of a stream of kind connects
	// over transport; it returns the observer of its writes and the func
	// to call when it leaves.
	Subscriber(kind, transport string) (obs streamhttp.Observer, leave func())
}

// subscriber returns the observer for one subscriber and its leave func;
// both are no-ops without Metrics.
func (s *Server) subscriber(kind, transport string) (streamhttp.Observer, func()) {
	if s.d.Metrics == nil {
		return nil, func() {}
	}
	return s.d.Metrics.Subscriber(kind, transport)
}

// metrics serves the Prometheus exposition.
func (s *Server) metrics(ctx context.Context, c *app.RequestContext) error {
	if s.d.MetricsHandler == nil {
		return notFound("metrics are not enabled")
	}
	adaptor.HertzHandler(s.d.MetricsHandler)(ctx, c)
	return nil
}
