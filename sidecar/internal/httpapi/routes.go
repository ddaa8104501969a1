package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/web"
)

// handler is a route's logic; a returned error is answered by writeError.
type handler func(ctx context.Context, c *app.RequestContext) error

type route struct {
	Method, Path string // Path in Hertz syntax (":param")
	h            handler
	// Scope is what a token needs on the route (auth.ScopePublic: none).
	// Every route declares one: New refuses a table with a route
	// without, and the access test walks this table.
	Scope string
	// Stream marks a GET stream route (SSE, WebSocket): only there may a
	// browser carry its token as the cookie or access_token, which it
	// cannot send as a header.
	Stream bool
}

// routeTable is every route; the router and the Allow header use it, and
// the OpenAPI test compares the router with the document.
type routeTable []route

// Scopes of the table, short.
const (
	public = auth.ScopePublic
	read   = auth.ScopeStreamsRead
	write  = auth.ScopeStreamsWrite
	admin  = auth.ScopeEmittersAdmin
	// authenticated: any valid token, whatever its scopes (whoami: a
	// queues-only token must learn its tenant too).
	authenticated = "authenticated"
)

func (s *Server) table() routeTable {
	r := routeTable{
		{"GET", "/", s.root, public, false},
		{"GET", "/livedoc", s.livedoc, public, false},
		{"GET", "/livedoc/:asset", s.livedocAsset, public, false},
		{"GET", "/healthz", s.healthz, public, false},
		{"GET", "/readyz", s.readyz, public, false},
		{"GET", "/metrics", s.metrics, auth.ScopeMetricsRead, false},
		{"GET", "/openapi.yaml", s.openapi, public, false},
		{"GET", "/openapi.json", s.openapiJSONHandler, public, false},

		{"PUT", "/log", s.createLog, admin, false},
		{"GET", "/log/:id", s.logPage, read, false},
		{"GET", "/sse/log/:id", s.emitterSSE("id"), read, true},
		{"GET", "/magic", s.sharedSSE("magic"), read, true},
		{"GET", "/time", s.sharedSSE("time"), read, true},
		{"GET", "/echo", s.echo, read, true},

		{"GET", "/fib", s.fibIndex, read, false},
		{"GET", "/sse/fib", s.sharedSSE("fib"), read, true},

		{"GET", "/track/:user", s.trackPublish, write, false},
		{"POST", "/track/:user", s.trackPublish, write, false},
		{"GET", "/ws/track/:user", s.trackWS, read, true},
		{"GET", "/sse/track/:user", s.trackSSE, read, true},

		{"GET", "/api/v1/plugins", s.listPlugins, read, false},
		{"GET", "/api/v1/kinds", s.listKinds, read, false},
		{"POST", "/api/v1/emitters", s.createEmitter, admin, false},
		{"GET", "/api/v1/emitters", s.listEmitters, read, false},
		{"GET", "/api/v1/emitters/:id", s.getEmitter, read, false},
		{"DELETE", "/api/v1/emitters/:id", s.deleteEmitter, admin, false},
		{"POST", "/api/v1/emitters/:id/commands/:name", s.command, write, false},
		{"GET", "/api/v1/streams/:stream/events", s.streamEvents, read, false},
		{"GET", "/api/v1/streams/:stream/sse", s.streamSSE, read, true},
		{"GET", "/api/v1/streams/:stream/ws", s.streamWS, read, true},
		{"GET", "/api/v1/cluster", s.clusterView, read, false},
		{"GET", "/api/v1/whoami", s.whoami, authenticated, false},
		{"GET", "/api/v1/guests", s.listGuests, read, false},
	}
	for _, name := range fibCommands {
		// GET /fib/next moves the counter too: the scope follows what a
		// route does, not its method.
		scope := write
		if name == "current" {
			scope = read
		}
		r = append(r, route{"GET", "/fib/" + name, s.fib(name), scope, false}, route{"POST", "/fib/" + name, s.fib(name), scope, false})
	}
	return r
}

// check refuses a table with a route that declares no scope, so a new
// route cannot slip past authorization.
func (t routeTable) check() error {
	for _, r := range t {
		if r.Scope == "" {
			return fmt.Errorf("httpapi: route %s %s declares no scope", r.Method, r.Path)
		}
	}
	return nil
}

func (s *Server) register() error {
	if err := CheckCompat(s.o.Compat); err != nil {
		return err
	}
	s.routes = s.withCompat(s.table(), s.o.Compat)
	if err := s.routes.check(); err != nil {
		return err
	}
	s.writeRoutes = map[string]bool{}
	for _, r := range s.routes {
		s.writeRoutes[r.Method+" "+r.Path] = r.Scope == write || r.Scope == admin
	}
	s.h.Use(s.accessLog, s.recoverMiddleware, s.crossSite, s.door)
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
		if s.d.Auth.Enabled() && r.Scope != public {
			chain = append([]app.HandlerFunc{s.authorize(r)}, chain...)
		}
		s.h.Handle(r.Method, r.Path, chain...)
	}
	for _, mount := range s.d.Mount {
		mount(s.h)
	}
	return nil
}

// crossSite refuses requests of other web origins the operator did not
// allow and answers CORS preflights (package crosssite decides).
func (s *Server) crossSite(ctx context.Context, c *app.RequestContext) {
	done, err := s.o.CrossSite.Check(c, s.writeRoutes[string(c.Method())+" "+c.FullPath()])
	if err != nil {
		s.writeError(c, err)
		c.Abort()
		return
	}
	if done {
		c.Abort()
		return
	}
	c.Next(ctx)
}

// authorize authenticates the request and checks the route's scope,
// answering a refusal itself (401 without a valid token, 403 without the
// scope).
func (s *Server) authorize(r route) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		p, err := s.d.Auth.Check(c, r.Stream)
		if err == nil && r.Scope != authenticated {
			err = auth.Require(p, r.Scope)
		}
		if err != nil {
			s.writeError(c, err)
			c.Abort()
			return
		}
		c.Next(ctx)
	}
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
		return &httperr.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "shutting down"}
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

// listGuests answers GET /api/v1/guests: every guest the node knows,
// present or gone, with its attached emitters.
func (s *Server) listGuests(_ context.Context, c *app.RequestContext) error {
	guests := []api.Guest{}
	if s.d.Guests != nil {
		guests = s.d.Guests()
	}
	return writeJSON(c, http.StatusOK, api.Items[api.Guest]{Items: guests})
}
