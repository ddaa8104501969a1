package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
)

// rateLimited answers 429 with Retry-After when the request is a write
// beyond its client's rate (Deps.Writes); nil otherwise.
func (s *Server) rateLimited(c *app.RequestContext) *httperr.Error {
	if s.d.Writes == nil || !isWrite(string(c.Method()), string(c.Path())) {
		return nil
	}
	client := ratelimit.Client(auth.TokenFrom(c, false), c.RemoteAddr().String())
	ok, secs := s.d.Writes.Allow(client, time.Now())
	if ok {
		return nil
	}
	c.Response.Header.Set("Retry-After", strconv.Itoa(secs))
	return &httperr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many writes from this client; retry after " + strconv.Itoa(secs) + "s"}
}

// isWrite reports whether a request changes state: every method but
// GET, HEAD and OPTIONS, and the GET routes of the earlier systems that
// write (a tracker publish, the Fibonacci commands that move).
func isWrite(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return true
	}
	if method != http.MethodGet {
		return false
	}
	switch path {
	case "/fib/next", "/fib/previous", "/fib/reset":
		return true
	}
	user, ok := strings.CutPrefix(path, "/track/")
	return ok && user != "" && !strings.Contains(user, "/")
}
