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
	status := c.Response.StatusCode()
	level := slog.LevelDebug
	switch {
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.log.LogAttrs(ctx, level, "request",
		slog.String(requestIDKey, id),
		slog.String("method", string(c.Method())),
		slog.String("path", string(c.Path())),
		slog.String("route", c.FullPath()),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	)
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
