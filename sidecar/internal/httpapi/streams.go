package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/guest"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// streamCtx is parent, also ended when the server closes.
func (s *Server) streamCtx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// serveWS upgrades to a WebSocket carrying st (see streamhttp.ServeWS).
func (s *Server) serveWS(ctx context.Context, c *app.RequestContext, st *stream.Stream) error {
	return s.serveWSFrames(ctx, c, st, false)
}

// serveWSFrames is serveWS; dataOnly sends each event's data as the frame
// instead of its envelope (an earlier system's frame format).
func (s *Server) serveWSFrames(ctx context.Context, c *app.RequestContext, st *stream.Stream, dataOnly bool) error {
	pos, err := resumePosition(c)
	if err != nil {
		return err
	}
	maxRate, flt, err := s.subscriberQuery(c)
	if err != nil {
		return err
	}
	tc, ok := ctx.Value(connKey{}).(*trackedConn)
	if !ok {
		return errors.New("ws: the connection did not come through the server's listener")
	}
	return s.upgradeWith(ctx, c, leanUpgrader, func(conn *websocket.Conn) {
		s.startWS(tc, conn, st, pos, streamhttp.WSOptions{
			Heartbeat: s.o.HeartbeatInterval, MaxFrame: s.o.MaxWSFrame, WriteTimeout: s.o.WriteTimeout, DataOnly: dataOnly, MaxRate: maxRate, Filter: flt,
		})
	})
}

// upgrade switches to WebSocket and runs fn on the hijacked connection.
func (s *Server) upgrade(ctx context.Context, c *app.RequestContext, fn func(*websocket.Conn)) error {
	return s.upgradeWith(ctx, c, websocket.HertzUpgrader{}, func(conn *websocket.Conn) {
		// The handler chain (and its busy mark) ended before the hijack.
		release := markBusy(ctx)
		defer release()
		fn(conn)
	})
}

// leanUpgrader makes a connection whose reads and writes the stream
// session does itself: its buffers would be garbage (smallest read buffer,
// write buffers from a pool never used).
var leanUpgrader = websocket.HertzUpgrader{ReadBufferSize: 1, WriteBufferPool: &sync.Pool{}}

// upgradeWith performs the handshake with up's buffer settings.
func (s *Server) upgradeWith(ctx context.Context, c *app.RequestContext, up websocket.HertzUpgrader, fn func(*websocket.Conn)) error {
	if !strings.EqualFold(c.Request.Header.Get("Upgrade"), "websocket") {
		return &httperr.Error{Status: http.StatusBadRequest, Code: "websocket_required", Message: "this route is a WebSocket: send an Upgrade: websocket request"}
	}
	if s.ctx.Err() != nil {
		return stream.ErrClosed
	}
	var upErr error
	// The crossSite middleware checked Origin against the allowlist
	// ("null" included), which the upgrader's own check cannot know.
	up.CheckOrigin = func(*app.RequestContext) bool { return true }
	up.Error = func(_ *app.RequestContext, status int, reason error) {
		upErr = &httperr.Error{Status: status, Code: "bad_handshake", Message: reason.Error()}
	}
	err := up.Upgrade(c, fn)
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
		st, err := s.emitterStream(ctx, c, c.Param(p))
		if err != nil {
			return err
		}
		return s.serveSSE(ctx, c, st)
	}
}

// sharedSSE serves the stream of a shared emitter the app creates.
func (s *Server) sharedSSE(id string) handler {
	return func(ctx context.Context, c *app.RequestContext) error {
		st, err := s.d.Emitters.Stream(ctx, id)
		if err != nil {
			return err
		}
		return s.serveSSE(ctx, c, st)
	}
}

func (s *Server) trackSSE(ctx context.Context, c *app.RequestContext) error {
	st, err := s.trackStream(ctx, c, c.Param("user"))
	if err != nil {
		return err
	}
	return s.serveSSE(ctx, c, st)
}

func (s *Server) trackWS(ctx context.Context, c *app.RequestContext) error {
	st, err := s.trackStream(ctx, c, c.Param("user"))
	if err != nil {
		return err
	}
	return s.serveWS(ctx, c, st)
}

// resolveStream finds a stream by name: "track:{user}" (the request's
// tenant's user), an emitter id, or, with auth off, any other stream the
// hub holds (with auth on, a stream of no known owner is not served).
func (s *Server) resolveStream(ctx context.Context, c *app.RequestContext, name string) (*stream.Stream, error) {
	if user, ok := strings.CutPrefix(name, tracker.Prefix); ok {
		return s.trackStream(ctx, c, user)
	}
	st, err := s.emitterStream(ctx, c, name)
	if err == nil {
		return st, nil
	}
	if errors.Is(err, emitter.ErrNotFound) && name == guest.StreamName {
		// The node's guests belong to no tenant: every reader sees them,
		// as GET /api/v1/guests shows them.
		if st, ok := s.d.Streams.Get(name); ok {
			return st, nil
		}
	}
	if _, authed := tenant(c); authed {
		return nil, err
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
	st, err := s.resolveStream(ctx, c, c.Param("stream"))
	if err != nil {
		return err
	}
	return s.serveSSE(ctx, c, st)
}

func (s *Server) streamWS(ctx context.Context, c *app.RequestContext) error {
	st, err := s.resolveStream(ctx, c, c.Param("stream"))
	if err != nil {
		return err
	}
	return s.serveWS(ctx, c, st)
}
