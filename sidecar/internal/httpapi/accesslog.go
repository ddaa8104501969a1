package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
)

// RequestIDHeader carries a request's id in and out: a caller's own id
// (sane and short) is kept, so logs join across hops; otherwise one is
// made.
const RequestIDHeader = "X-Request-Id"

const requestIDKey = "request_id"

// accessLog gives every request an id (echoed in the response) and logs
// it once it ended: at debug when it succeeded, at info for 4xx and at
// error for 5xx, so routine traffic costs no log line at the default level.
func (s *Server) accessLog(ctx context.Context, c *app.RequestContext) {
	id := string(c.Request.Header.Peek(RequestIDHeader))
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.Set(requestIDKey, id)
	c.Response.Header.Set(RequestIDHeader, id)
	start := time.Now()
	c.Next(ctx)
	if v, ok := c.Get(accessHandoffKey); ok {
		if h, ok := v.(*accessHandoff); ok {
			*h = accessHandoff{id: id, method: string(c.Method()), path: string(c.Path()),
				route: c.FullPath(), status: c.Response.StatusCode(), start: start}
			return
		}
	}
	status := c.Response.StatusCode()
	level := accessLevel(status)
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.logRequest(ctx, level, id, string(c.Method()), string(c.Path()), c.FullPath(), status, time.Since(start))
}

func accessLevel(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (s *Server) logRequest(ctx context.Context, level slog.Level, id, method, path, route string, status int, d time.Duration) {
	s.log.LogAttrs(ctx, level, "request",
		slog.String(requestIDKey, id),
		slog.String("method", method),
		slog.String("path", path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("duration", d),
	)
}

// accessHandoffKey marks a request whose response outlives its handler
// (an SSE stream, see sseStream): accessLog fills the handoff instead of
// logging, and the stream logs the line when it ends, so the duration is
// the stream's, as when the handler served the whole stream.
const accessHandoffKey = "access_handoff"

type accessHandoff struct {
	id, method, path, route string
	status                  int
	start                   time.Time
}

// log logs the request's line (nothing for a nil handoff).
func (h *accessHandoff) log(s *Server) {
	if h == nil {
		return
	}
	ctx := context.Background()
	if level := accessLevel(h.status); s.log.Enabled(ctx, level) {
		s.logRequest(ctx, level, h.id, h.method, h.path, h.route, h.status, time.Since(h.start))
	}
}

// requestID returns the id accessLog gave the request.
func requestID(c *app.RequestContext) string { return c.GetString(requestIDKey) }

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
