package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/network"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/cloudwego/hertz/pkg/protocol/http1/resp"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// streamCtx is parent, also ended when the server closes.
func (s *Server) streamCtx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// serveSSE answers with st as an event stream. Errors before the headers
// go out are JSON answers; after that the response just ends.
func (s *Server) serveSSE(ctx context.Context, c *app.RequestContext, st *stream.Stream) error {
	pos, err := resumePosition(c)
	if err != nil {
		return err
	}
	if s.ctx.Err() != nil {
		return stream.ErrClosed
	}
	c.SetStatusCode(http.StatusOK)
	h := &c.Response.Header
	h.SetContentType("text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w := s.sseWriter(ctx, c)
	c.Response.HijackWriter(w)

	sub := st.Subscribe(pos)
	defer sub.Close()
	obs, leave := s.subscriber(st.Kind(), TransportSSE)
	defer leave()
	sctx, cancel := s.streamCtx(ctx)
	defer cancel()
	defer s.watchClient(ctx, c.GetConn(), cancel)()
	err = streamhttp.ServeSSE(sctx, w, sub, streamhttp.SSEOptions{Retry: s.o.SSERetry, Heartbeat: s.o.HeartbeatInterval, Observer: obs})
	if err != nil {
		s.log.Debug("sse ended", "stream", st.Name(), "err", err)
	}
	return nil
}

// sseWriter returns the response writer of an SSE stream: straight to
// the socket when the request came through the tracking listener, else
// Hertz's chunked writer.
func (s *Server) sseWriter(ctx context.Context, c *app.RequestContext) sseBody {
	if tc, ok := ctx.Value(connKey{}).(*trackedConn); ok {
		return &rawChunked{conn: tc.Conn, h: &c.Response.Header}
	}
	return resp.NewChunkedBodyWriter(&c.Response, c.GetWriter())
}

// sseBody is a chunked response body Hertz finalizes after the handler.
type sseBody interface {
	Write(p []byte) (int, error)
	Flush() error
	Finalize() error
}

// rawChunked writes a chunked response straight to the socket, each Write
// one writev (headers first). Hertz's own writer copies into an output
// buffer that a connection then keeps for as long as the stream lasts:
// 4 KiB resident per idle subscriber.
type rawChunked struct {
	conn    net.Conn
	h       *protocol.ResponseHeader
	started bool
	done    bool
	err     error
	size    [24]byte
	vec     [4][]byte
}

var crlf = []byte("\r\n")

func (w *rawChunked) Write(p []byte) (int, error) {
	if len(p) == 0 || w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("sse: write after the response ended")
	}
	size := strconv.AppendInt(w.size[:0], int64(len(p)), 16)
	size = append(size, crlf...)
	if w.err = w.send(size, p, crlf); w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Flush does nothing: every Write went out already.
func (w *rawChunked) Flush() error { return w.err }

// Finalize ends the body with the last chunk (Hertz calls it after the
// handler; the connection stays usable for the next request).
func (w *rawChunked) Finalize() error {
	if w.done || w.err != nil {
		return w.err
	}
	w.done = true
	w.err = w.send([]byte("0\r\n\r\n"))
	return w.err
}

// send writes the headers (first call only) and parts in one writev.
func (w *rawChunked) send(parts ...[]byte) error {
	vec := w.vec[:0]
	if !w.started {
		w.started = true
		w.h.SetContentLength(-1) // chunked
		vec = append(vec, w.h.Header())
	}
	vec = append(vec, parts...)
	bufs := net.Buffers(vec)
	_, err := bufs.WriteTo(w.conn)
	clear(w.vec[:]) // keep no reference to the caller's bytes
	if err != nil {
		return fmt.Errorf("sse write: %w", err)
	}
	return nil
}

// watchClient cancels when the client closes the connection, so a quiet
// stream does not hold a subscription until the next write fails. The
// server's hangup watcher does it without a goroutine per connection;
// where it cannot (no socket, not Linux), a reader goroutine does. The
// returned func stops the watch before the connection can be closed.
func (s *Server) watchClient(ctx context.Context, conn network.Conn, cancel context.CancelFunc) (stop func()) {
	if tc, ok := ctx.Value(connKey{}).(*trackedConn); ok && s.hangups != nil {
		if stop, err := s.hangups.Watch(tc.Conn, cancel); err == nil {
			return stop
		}
	}
	return readWatch(conn, cancel)
}

// readWatch is watchClient with a goroutine parked in a read. The returned
// func stops the watch and waits for it: nothing reads the connection once
// the handler returned.
func readWatch(conn network.Conn, cancel context.CancelFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := conn.Peek(1); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				cancel()
			}
		}
	}()
	return func() {
		_ = conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = conn.SetReadDeadline(time.Time{})
	}
}

// serveWS upgrades to a WebSocket carrying st (see streamhttp.ServeWS).
func (s *Server) serveWS(ctx context.Context, c *app.RequestContext, st *stream.Stream) error {
	pos, err := resumePosition(c)
	if err != nil {
		return err
	}
	return s.upgrade(ctx, c, func(conn *websocket.Conn) {
		sctx, cancel := s.streamCtx(context.Background())
		defer cancel()
		obs, leave := s.subscriber(st.Kind(), TransportWS)
		defer leave()
		_ = streamhttp.ServeWS(sctx, conn, st, pos, streamhttp.WSOptions{
			Heartbeat: s.o.HeartbeatInterval, MaxFrame: s.o.MaxWSFrame, Observer: obs,
		})
	})
}

// upgrade switches to WebSocket and runs fn on the hijacked connection.
func (s *Server) upgrade(ctx context.Context, c *app.RequestContext, fn func(*websocket.Conn)) error {
	if !strings.EqualFold(c.Request.Header.Get("Upgrade"), "websocket") {
		return &apiError{Status: http.StatusBadRequest, Code: "websocket_required", Message: "this route is a WebSocket: send an Upgrade: websocket request"}
	}
	if s.ctx.Err() != nil {
		return stream.ErrClosed
	}
	var upErr error
	up := websocket.HertzUpgrader{Error: func(_ *app.RequestContext, status int, reason error) {
		upErr = &apiError{Status: status, Code: "bad_handshake", Message: reason.Error()}
	}}
	err := up.Upgrade(c, func(conn *websocket.Conn) {
		// The handler chain (and its busy mark) ended before the hijack.
		release := markBusy(ctx)
		defer release()
		fn(conn)
	})
	if upErr != nil {
		return upErr
	}
	return err
}

func (s *Server) echo(ctx context.Context, c *app.RequestContext) error {
	return s.upgrade(ctx, c, func(conn *websocket.Conn) {
		sctx, cancel := s.streamCtx(context.Background())
		defer cancel()
		_ = streamhttp.ServeEcho(sctx, conn, s.o.MaxWSFrame)
	})
}

// emitterSSE serves the stream of the emitter named by path param p.
func (s *Server) emitterSSE(p string) handler {
	return func(ctx context.Context, c *app.RequestContext) error {
		st, err := s.d.Emitters.Stream(c.Param(p))
		if err != nil {
			return err
		}
		return s.serveSSE(ctx, c, st)
	}
}

// sharedSSE serves the stream of a shared emitter the app creates.
func (s *Server) sharedSSE(id string) handler {
	return func(ctx context.Context, c *app.RequestContext) error {
		st, err := s.d.Emitters.Stream(id)
		if err != nil {
			return err
		}
		return s.serveSSE(ctx, c, st)
	}
}

func (s *Server) trackSSE(ctx context.Context, c *app.RequestContext) error {
	st, err := s.d.Tracker.Stream(ctx, c.Param("user"))
	if err != nil {
		return err
	}
	return s.serveSSE(ctx, c, st)
}

func (s *Server) trackWS(ctx context.Context, c *app.RequestContext) error {
	st, err := s.d.Tracker.Stream(ctx, c.Param("user"))
	if err != nil {
		return err
	}
	return s.serveWS(ctx, c, st)
}

// resolveStream finds a stream by name: "track:{user}", an emitter id, or
// any other stream the hub holds.
func (s *Server) resolveStream(ctx context.Context, name string) (*stream.Stream, error) {
	if user, ok := strings.CutPrefix(name, tracker.Prefix); ok {
		return s.d.Tracker.Stream(ctx, user)
	}
	st, err := s.d.Emitters.Stream(name)
	if err == nil {
		return st, nil
	}
	if errors.Is(err, emitter.ErrNotFound) {
		if st, ok := s.d.Streams.Get(name); ok {
			return st, nil
		}
		return nil, notFound("stream %q not found", name)
	}
	return nil, err
}

func (s *Server) streamSSE(ctx context.Context, c *app.RequestContext) error {
	st, err := s.resolveStream(ctx, c.Param("stream"))
	if err != nil {
		return err
	}
	return s.serveSSE(ctx, c, st)
}

func (s *Server) streamWS(ctx context.Context, c *app.RequestContext) error {
	st, err := s.resolveStream(ctx, c.Param("stream"))
	if err != nil {
		return err
	}
	return s.serveWS(ctx, c, st)
}
