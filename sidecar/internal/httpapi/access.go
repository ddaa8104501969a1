package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

// Tenancy. With auth on, every emitter a token creates belongs to the
// token's tenant, and tracker users are per tenant (tracker.Qualify).
// Another tenant's emitter answers 404, as one that does not exist would:
// its id tells nothing. Emitters without a tenant (the shared magic, time
// and fib, and those created while auth was off) are read by every
// tenant; deleting one needs the "*" scope. The route's scope is checked
// before (authorize); these checks are about whose resource it is.

// tenant is the request's tenant ("" with auth off).
func tenant(c *app.RequestContext) (string, bool) {
	p, ok := auth.FromContext(c)
	return p.Tenant, ok
}

// visible reports whether the request's tenant may use spec.
func visible(c *app.RequestContext, spec emitter.Spec) bool {
	t, ok := tenant(c)
	return !ok || spec.Tenant == "" || spec.Tenant == t
}

// ownEmitter returns emitter id when the request's tenant may use it.
func (s *Server) ownEmitter(ctx context.Context, c *app.RequestContext, id string) (emitter.Spec, error) {
	spec, err := s.d.Emitters.Get(ctx, id)
	if err != nil {
		return spec, err
	}
	if !visible(c, spec) {
		return emitter.Spec{}, fmt.Errorf("emitter %s: %w", id, emitter.ErrNotFound)
	}
	return spec, nil
}

// emitterStream is the stream of emitter id, checked for tenancy first.
func (s *Server) emitterStream(ctx context.Context, c *app.RequestContext, id string) (*stream.Stream, error) {
	if _, ok := tenant(c); ok {
		if _, err := s.ownEmitter(ctx, c, id); err != nil {
			return nil, err
		}
	}
	return s.d.Emitters.Stream(ctx, id)
}

// mayDelete refuses deleting a shared emitter without the "*" scope.
func mayDelete(c *app.RequestContext, spec emitter.Spec) error {
	p, ok := auth.FromContext(c)
	if ok && spec.Tenant == "" && !p.HasScope(auth.ScopeAll) {
		return &httperr.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: fmt.Sprintf("emitter %s is shared by every tenant: deleting it needs the \"*\" scope", spec.ID)}
	}
	return nil
}

// trackUser is the tracker user a request names, within its tenant.
func trackUser(c *app.RequestContext, user string) (string, error) {
	if !tracker.ValidName(user) {
		return "", fmt.Errorf("tracker %q: %w", user, tracker.ErrInvalidUser)
	}
	t, _ := tenant(c)
	return tracker.Qualify(t, user), nil
}

// trackStream opens the tracker stream of user within the request's tenant.
func (s *Server) trackStream(ctx context.Context, c *app.RequestContext, user string) (*stream.Stream, error) {
	u, err := trackUser(c, user)
	if err != nil {
		return nil, err
	}
	return s.d.Tracker.Stream(ctx, u)
}
