package httpapi

import (
	"bytes"
	"context"

	"github.com/cloudwego/hertz/pkg/network"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/core/stream"
	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// startWS is the hijack handler of a stream WebSocket, run by Hertz on
// its connection goroutine once the 101 went out. As an SSE response
// (startSSE), the session then runs on a goroutine of its own over the
// raw socket, so that an idle subscriber keeps neither Hertz's goroutine
// (its grown stack), its read buffer and request context, nor the
// library's buffers; the server's watcher says when the client sent
// something, so no reader goroutine waits either. Over TLS the bytes go
// through Hertz's TLS connection, which it closes when this returns: the
// session runs here then, with a reader goroutine.
func (s *Server) startWS(tc *trackedConn, conn *websocket.Conn, st *stream.Stream, pos stream.Position, o streamhttp.WSOptions) {
	hc := conn.UnderlyingConn()
	if !s.streams.add() {
		// Close began after the handler checked. The client has its 101,
		// so it gets the close any session gets when the server stops,
		// not a bare hang-up; Hertz then closes the socket.
		streamhttp.SayShuttingDown(conn)
		return
	}
	tc.busy.Add(1) // never an idle keep-alive connection for expireIdle
	obs, leave := s.subscriber(st.Kind(), TransportWS)
	o.Observer = obs
	end := func() {
		leave()
		tc.busy.Add(-1)
		s.streams.done()
	}
	// A child of the server's ctx, so Close ends it (close 1001).
	ctx, cancel := context.WithCancel(s.ctx)
	if s.o.TLS != nil {
		defer cancel()
		defer end()
		_ = streamhttp.ServeWS(ctx, streamhttp.WSConn{Conn: hc}, st, pos, o)
		return
	}
	wc := streamhttp.WSConn{Conn: tc.Conn, Watcher: s.hangups}
	// Bytes the client sent right after its handshake may sit in Hertz's
	// input buffer, which goes when this returns.
	if nc, ok := hc.(network.Conn); ok && nc.Len() > 0 {
		if p, err := nc.Peek(nc.Len()); err == nil {
			wc.Buffered = bytes.Clone(p)
		}
	}
	tc.detached.Store(true)
	ws := streamhttp.StartWS(ctx, wc, st, pos, o)
	go func() {
		defer cancel()
		_ = ws.Run()
		_ = tc.closeNow() // Run stopped the watch: the fd may be reused now
		end()
	}()
}
