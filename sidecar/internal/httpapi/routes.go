package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/web"
)

// handler is a route's logic; a returned error is answered by writeError.
type handler func(ctx context.Context, c *app.RequestContext) error

type route struct {
	Method, Path string // Path in Hertz syntax (":param")
	h            handler
}

// routeTable is every route; the router and the Allow header use it, and
// the OpenAPI test compares the router with the document.
type routeTable []route

func (s *Server) table() routeTable {
	r := routeTable{
		{"GET", "/", s.root},
		{"GET", "/livedoc", s.livedoc},
		{"GET", "/livedoc/:asset", s.livedocAsset},
		{"GET", "/healthz", s.healthz},
		{"GET", "/readyz", s.readyz},
		{"GET", "/metrics", s.metrics},
		{"GET", "/openapi.yaml", s.openapi},
		{"GET", "/openapi.json", s.openapiJSONHandler},

		{"PUT", "/log", s.createLog},
		{"GET", "/log/:id", s.logPage},
		{"GET", "/sse/log/:id", s.emitterSSE("id")},
		{"GET", "/magic", s.sharedSSE("magic")},
		{"GET", "/time", s.sharedSSE("time")},
		{"GET", "/echo", s.echo},

		{"GET", "/fib", s.fibIndex},
		{"GET", "/sse/fib", s.sharedSSE("fib")},

		{"GET", "/track/:user", s.trackPublish},
		{"POST", "/track/:user", s.trackPublish},
		{"GET", "/ws/track/:user", s.trackWS},
		{"GET", "/sse/track/:user", s.trackSSE},

		{"GET", "/api/v1/plugins", s.listPlugins},
		{"GET", "/api/v1/kinds", s.listKinds},
		{"POST", "/api/v1/emitters", s.createEmitter},
		{"GET", "/api/v1/emitters", s.listEmitters},
		{"GET", "/api/v1/emitters/:id", s.getEmitter},
		{"DELETE", "/api/v1/emitters/:id", s.deleteEmitter},
		{"POST", "/api/v1/emitters/:id/commands/:name", s.command},
		{"GET", "/api/v1/streams/:stream/events", s.streamEvents},
		{"GET", "/api/v1/streams/:stream/sse", s.streamSSE},
		{"GET", "/api/v1/streams/:stream/ws", s.streamWS},
		{"GET", "/api/v1/cluster", s.clusterView},
	}
	for _, name := range fibCommands {
		r = append(r, route{"GET", "/fib/" + name, s.fib(name)}, route{"POST", "/fib/" + name, s.fib(name)})
	}
	return r
}

func (s *Server) register() {
	s.routes = s.table()
	s.h.Use(s.accessLog, s.recoverMiddleware)
	s.h.Use(s.d.Middleware...)
	s.h.NoRoute(s.noRoute)
	s.h.NoMethod(s.noMethod)
	for _, r := range s.routes {
		h := r.h
		chain := []app.HandlerFunc{func(ctx context.Context, c *app.RequestContext) {
			if err := h(ctx, c); err != nil {
				s.writeError(c, err)
			}
		}}
		if s.d.Authenticate != nil && !publicRoute(r.Path) {
			chain = append([]app.HandlerFunc{s.authenticate}, chain...)
		}
		s.h.Handle(r.Method, r.Path, chain...)
	}
	for _, mount := range s.d.Mount {
		mount(s.h)
	}
}

// authenticate runs Deps.Authenticate, answering a refusal itself.
func (s *Server) authenticate(ctx context.Context, c *app.RequestContext) {
	if err := s.d.Authenticate(c); err != nil {
		s.writeError(c, err)
		c.Abort()
		return
	}
	c.Next(ctx)
}

// publicRoute reports whether path is served without a token: what a
// browser needs to load livedoc and ask for one, and what probes and
// scrapers read.
func publicRoute(path string) bool {
	switch path {
	case "/", "/livedoc", "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/openapi.json":
		return true
	}
	return strings.HasPrefix(path, "/livedoc/")
}

// jsonContentType is the Content-Type of every JSON answer.
const jsonContentType = "application/json; charset=utf-8"

// writeJSON answers with v encoded by encoding/json (json.RawMessage
// values pass through unchanged).
func writeJSON(c *app.RequestContext, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Data(status, jsonContentType, b)
	return nil
}

func (s *Server) root(_ context.Context, c *app.RequestContext) error {
	c.Redirect(http.StatusFound, []byte("/livedoc"))
	return nil
}

func (s *Server) openapi(_ context.Context, c *app.RequestContext) error {
	c.Data(http.StatusOK, "application/yaml", web.OpenAPI)
	return nil
}

func (s *Server) healthz(_ context.Context, c *app.RequestContext) error {
	return writeJSON(c, http.StatusOK, api.Status{Status: "ok"})
}

func (s *Server) readyz(ctx context.Context, c *app.RequestContext) error {
	if s.ctx.Err() != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "shutting down"}
	}
	if s.d.Ready != nil {
		// Mapped like any error (errors.go): a store that cannot serve
		// or a required plugin that is down answer 503 unavailable.
		if err := s.d.Ready(ctx); err != nil {
			return err
		}
	}
	return writeJSON(c, http.StatusOK, api.Status{Status: "ready"})
}
