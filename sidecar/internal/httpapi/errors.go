package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/api"
)

// apiError is an error with its HTTP answer. Handlers return it for
// request problems they detect themselves; everything else is mapped in
// errorFor.
type apiError struct {
	Status  int
	Code    string
	Message string
	Fields  []api.FieldError
	allow   string
}

// body is the answer's JSON: api.ErrorBody, the one error shape.
func (e *apiError) body() []byte {
	return api.NewError(e.Code, e.Message, e.Fields...).Encode()
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// errorFor is the one place that maps errors to HTTP answers.
func errorFor(err error) *apiError {
	var (
		ae *apiError
		ve *emitter.ValidationError
		ce *emitter.CommandError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid", Message: ve.Error(), Fields: fieldsOut(ve.Fields)}
	case errors.As(err, &ce):
		code := ce.Code
		if code == "" {
			code = "command_failed"
		}
		return &apiError{Status: http.StatusBadRequest, Code: code, Message: ce.Message}
	case errors.Is(err, emitter.ErrUnknownCommand):
		return &apiError{Status: http.StatusNotFound, Code: "unknown_command", Message: err.Error()}
	case errors.Is(err, emitter.ErrNotFound), errors.Is(err, stream.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, emitter.ErrExists):
		return &apiError{Status: http.StatusConflict, Code: "exists", Message: err.Error()}
	case errors.Is(err, emitter.ErrUnknownKind):
		return &apiError{Status: http.StatusBadRequest, Code: "unknown_kind", Message: err.Error()}
	case errors.Is(err, tracker.ErrInvalidUser):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_user", Message: tracker.ErrInvalidUser.Error()}
	case errors.Is(err, tracker.ErrInvalidData):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_data", Message: tracker.ErrInvalidData.Error()}
	case errors.Is(err, emitter.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: err.Error()}
	case errors.Is(err, stream.ErrStoreUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "storage temporarily unavailable; retry later"}
	case errors.Is(err, stream.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "closed", Message: "stream closed"}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "timed out"}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "canceled", Message: "request canceled"}
	default:
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
}

// fieldsOut maps the domain's field errors to the API's.
func fieldsOut(fs []emitter.FieldError) []api.FieldError {
	out := make([]api.FieldError, len(fs))
	for i, f := range fs {
		out[i] = api.FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

// writeError answers c with err's status and JSON body.
func (s *Server) writeError(c *app.RequestContext, err error) {
	ae := errorFor(err)
	if ae.Status >= 500 {
		s.log.Error("request failed", requestIDKey, requestID(c), "method", string(c.Method()), "path", string(c.Path()), "status", ae.Status, "err", err)
	}
	if ae.allow != "" {
		c.Response.Header.Set("Allow", ae.allow)
	}
	c.Data(ae.Status, jsonContentType, ae.body())
}

// recoverMiddleware turns a handler panic into a 500 JSON answer and marks
// the connection busy while a handler runs (see trackingListener).
func (s *Server) recoverMiddleware(ctx context.Context, c *app.RequestContext) {
	release := markBusy(ctx)
	defer release()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panic", requestIDKey, requestID(c), "path", string(c.Path()), "panic", r, "stack", string(debug.Stack()))
			c.Abort()
			if c.Response.GetHijackWriter() == nil {
				c.Response.Reset()
				s.writeError(c, fmt.Errorf("panic: %v", r))
			}
		}
	}()
	c.Next(ctx)
}

func (s *Server) noRoute(_ context.Context, c *app.RequestContext) {
	s.writeError(c, notFound("no route %s %s", c.Method(), c.Path()))
}

func (s *Server) noMethod(_ context.Context, c *app.RequestContext) {
	allow := s.routes.allowed(string(c.Path()))
	s.writeError(c, &apiError{
		Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: fmt.Sprintf("%s not allowed on %s (allowed: %s)", c.Method(), c.Path(), allow),
		allow:   allow,
	})
}

// allowed lists the methods registered for path, for the Allow header.
func (t routeTable) allowed(path string) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range t {
		if matchPattern(r.Path, path) && !seen[r.Method] {
			seen[r.Method] = true
			out = append(out, r.Method)
		}
	}
	return strings.Join(out, ", ")
}

// matchPattern matches a Hertz route pattern (":param" segments) against
// a request path.
func matchPattern(pattern, path string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	qs := strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(qs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, ":") {
			if qs[i] == "" {
				return false
			}
			continue
		}
		if p != qs[i] {
			return false
		}
	}
	return true
}
