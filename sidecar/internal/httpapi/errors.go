package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

func badRequest(code, format string, args ...any) *httperr.Error {
	return httperr.New(http.StatusBadRequest, code, format, args...)
}

func notFound(format string, args ...any) *httperr.Error {
	return httperr.New(http.StatusNotFound, "not_found", format, args...)
}

// writeError answers c with err's status, headers and JSON body.
func (s *Server) writeError(c *app.RequestContext, err error) {
	ae := httperr.For(err)
	if ae.Status >= 500 {
		s.log.Error("request failed", requestIDKey, requestID(c), "method", string(c.Method()), "path", string(c.Path()), "status", ae.Status, "err", err)
	}
	ae.SetHeaders(&c.Response.Header)
	c.Data(ae.Status, jsonContentType, ae.Body().Encode())
}

// recoverMiddleware turns a handler panic into a 500 JSON answer and marks
// the connection busy while a handler runs (see trackingListener). It
// also gives the error body to the answers Hertz's router makes without
// a route (a request with no Host, a path not starting with "/"), which
// run the middleware but no handler.
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
	if st := c.Response.StatusCode(); st >= 400 && len(c.Response.Body()) == 0 && !c.Response.IsBodyStream() &&
		c.Response.GetHijackWriter() == nil {
		s.writeError(c, &httperr.Error{Status: st, Code: "bad_request", Message: http.StatusText(st)})
	}
}

// noRoute answers 404, or, when the path with its trailing slash added or
// removed has a route for the method, redirects there (301 for GET, 307
// otherwise, as Hertz's own redirect did) with the error body saying
// where.
func (s *Server) noRoute(_ context.Context, c *app.RequestContext) {
	path := string(c.Path())
	if other, ok := s.slashTwin(string(c.Method()), path); ok {
		status := http.StatusMovedPermanently
		if string(c.Method()) != http.MethodGet {
			status = http.StatusTemporaryRedirect
		}
		loc := other
		if q := c.Request.URI().QueryString(); len(q) > 0 {
			loc += "?" + string(q)
		}
		c.Response.Header.Set("Location", loc)
		s.writeError(c, &httperr.Error{Status: status, Code: "redirect", Message: fmt.Sprintf("%s is served at %s", path, other)})
		return
	}
	s.writeError(c, notFound("no route %s %s", c.Method(), c.Path()))
}

// slashTwin returns path with its trailing slash toggled when the router
// has a route for method there.
func (s *Server) slashTwin(method, path string) (string, bool) {
	if path == "/" || path == "" {
		return "", false
	}
	other := path + "/"
	if strings.HasSuffix(path, "/") {
		other = strings.TrimSuffix(path, "/")
	}
	for _, r := range s.h.Routes() {
		if r.Method == method && matchPattern(r.Path, other) && strings.HasSuffix(r.Path, "/") == strings.HasSuffix(other, "/") {
			return other, true
		}
	}
	return "", false
}

func (s *Server) noMethod(_ context.Context, c *app.RequestContext) {
	allow := s.allowed(string(c.Path()))
	s.writeError(c, &httperr.Error{
		Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: fmt.Sprintf("%s not allowed on %s (allowed: %s)", c.Method(), c.Path(), allow),
		Allow:   allow,
	})
}

// allowed lists the methods registered for path (the queue API's
// included), for the Allow header.
func (s *Server) allowed(path string) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range s.h.Routes() {
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

// hertzEarly are the answers Hertz writes on its own, with no handler
// and no middleware, when it cannot read a request (see its
// defaultErrorHandler): a text/plain body of one of these messages. The
// connection rewrites them into the error body (earlyErrorJSON).
var hertzEarly = []struct {
	body, code, message string
}{
	{"Request Header Fields Too Large", "headers_too_large", "the request headers exceed the server's limit"},
	{"Request Entity Too Large", "too_large", "the request body exceeds the server's limit"},
	{"Request timeout", "timeout", "the request was not received in time"},
	{"Error when parsing request", "bad_request", "the request is not valid HTTP/1.1 (request line, headers or Content-Length)"},
}

const hertzPlainType = "text/plain; charset=utf-8"

// earlyErrorJSON returns b with a Hertz early answer at its end replaced
// by the same status with the JSON error body; ok is false (b returned
// as is) when b does not end with one. Such an answer is the last bytes
// Hertz writes on a connection (it closes it), after any answers to
// earlier pipelined requests.
func earlyErrorJSON(b []byte) ([]byte, bool) {
	if len(b) < 64 || len(b) > 64<<10 {
		return b, false
	}
	if last := b[len(b)-1]; last != 'e' && last != 't' {
		return b, false // fast path: no early message ends otherwise
	}
	for _, e := range hertzEarly {
		head, ok := bytes.CutSuffix(b, []byte("\r\n\r\n"+e.body))
		if !ok {
			continue
		}
		start := bytes.LastIndex(head, []byte("HTTP/1.1 4"))
		if start < 0 {
			return b, false
		}
		lines := strings.Split(string(head[start:]), "\r\n")
		if !hasHeader(lines, "Content-Type", hertzPlainType) ||
			!hasHeader(lines, "Content-Length", strconv.Itoa(len(e.body))) {
			return b, false
		}
		body := api.NewError(e.code, e.message).Encode()
		out := append([]byte(nil), b[:start]...)
		for _, l := range lines {
			name, _, _ := strings.Cut(l, ":")
			if !strings.EqualFold(name, "Content-Type") && !strings.EqualFold(name, "Content-Length") {
				out = append(append(out, l...), "\r\n"...)
			}
		}
		out = append(out, "Content-Type: "+jsonContentType+"\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"...)
		return append(out, body...), true
	}
	return b, false
}

// hasHeader reports whether the header lines hold name: value.
func hasHeader(lines []string, name, value string) bool {
	for _, l := range lines[1:] {
		n, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(n, name) && strings.TrimSpace(v) == value {
			return true
		}
	}
	return false
}
