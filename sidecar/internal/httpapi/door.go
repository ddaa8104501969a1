package httpapi

import (
	"context"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

// door checks every request before its route (or the answer for no
// route) runs, the same for the API and the mounted queue routes: a path
// with dot segments is refused, writes beyond the client's rate are
// refused, and a body that is not UTF-8 is refused (every body this
// server takes is JSON, which is UTF-8; one accepted here would come
// back out in WebSocket text frames that clients cannot read).
func (s *Server) door(ctx context.Context, c *app.RequestContext) {
	if err := s.checkDoor(c); err != nil {
		s.writeError(c, err)
		c.Abort()
		return
	}
	c.Next(ctx)
}

func (s *Server) checkDoor(c *app.RequestContext) *httperr.Error {
	if hasDotSegment(string(c.Request.URI().PathOriginal())) {
		return badRequest("invalid_path", "the path must not contain . or .. segments, encoded or not")
	}
	if ae := s.rateLimited(c); ae != nil {
		return ae
	}
	if b := c.Request.Body(); len(b) > 0 && !utf8.Valid(b) {
		return badRequest("invalid_utf8", "the request body is not valid UTF-8 (JSON text must be)")
	}
	return nil
}

// hasDotSegment reports whether the raw request path has a "." or ".."
// segment once percent-decoded ("..%2f" included). The router cleans
// such paths into another route, which would let a parameter (a message
// id, a user) address something else, so they are refused instead.
func hasDotSegment(raw string) bool {
	if !strings.Contains(raw, ".") && !strings.Contains(raw, "%2") {
		return false
	}
	path, err := url.PathUnescape(raw)
	if err != nil {
		return true // an invalid escape is no path either
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
