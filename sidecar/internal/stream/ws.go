package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// WSOptions tune a WebSocket session.
type WSOptions struct {
	// Heartbeat is the ping interval; a client silent (no pong, no frame)
	// for two intervals is dropped (default 15s).
	Heartbeat time.Duration
	// MaxFrame bounds a client message; larger ones close with 1009
	// (default 64 KiB).
	MaxFrame int64
	// WriteTimeout bounds one write to the client (default 10s).
	WriteTimeout time.Duration
	// Observer, if set, is told about every write (telemetry).
	Observer Observer
	// DataOnly sends each event's data as its frame instead of the JSON
	// envelope, for a client of an earlier system that knows no envelope.
	DataOnly bool
	// MaxRate, if not zero, caps the events sent a second (thin.Check
	// validated it); what is left out is reported by skipped markers.
	MaxRate uint64
	// Filter, if set, keeps only the events it matches (control markers
	// always pass).
	Filter *filter.Filter
}

func (o WSOptions) withDefaults() WSOptions {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 64 << 10
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	return o
}

// closeReason is why a session ends, sent as the close frame.
type closeReason struct {
	code int
	text string
	sent bool // the close frame already went out (gorilla sent 1009)
}

// session is one stream socket: a reader goroutine for client frames and
// the caller's goroutine as the only writer of events.
type session struct {
	conn *websocket.Conn
	st   *stream.Stream
	o    WSOptions

	// wake interrupts the writer's current Next (a resume request or a
	// ping due); one buffered slot, so a poke is never lost or blocking.
	wake    chan time.Time
	pingDue atomic.Bool

	mu     sync.Mutex
	resume *uint64      // pending {"resume"} request
	reason *closeReason // set once by whoever ends the session first
	// closing: the writer is done and gave the reader a last deadline,
	// which the reader must not push back.
	closing bool
}

func (s *session) poke() {
	select {
	case s.wake <- time.Time{}:
	default:
	}
}

// ServeWS streams st to conn from pos until ctx ends (close 1001), the
// stream closes (1000), the client goes away, sends a bad frame (1008) or
// an oversized one (1009). Each event is one text frame holding its JSON
// envelope; everything one Next returns goes out in a single write.
func ServeWS(ctx context.Context, conn *websocket.Conn, st *stream.Stream, pos stream.Position, o WSOptions) error {
	s := &session{conn: conn, st: st, o: o.withDefaults(), wake: make(chan time.Time, 1)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.readLoop(cancel)
	}()
	err := s.writeLoop(ctx, pos)
	s.finish(ctx, err)
	// Unblock the reader: the peer may never answer our close frame. A
	// reader that starts only now must not replace this deadline with
	// its own (2 heartbeats), or a shutdown waits for it.
	s.mu.Lock()
	s.closing = true
	_ = conn.UnderlyingConn().SetReadDeadline(time.Now().Add(time.Second))
	s.mu.Unlock()
	<-readerDone
	return nil
}

func (s *session) setReason(code int, text string, sent bool) {
	s.mu.Lock()
	if s.reason == nil {
		s.reason = &closeReason{code: code, text: text, sent: sent}
	}
	s.mu.Unlock()
}

// readLoop handles client frames; any end of reading ends the session.
func (s *session) readLoop(cancel context.CancelFunc) {
	defer cancel()
	c := s.conn
	c.SetReadLimit(s.o.MaxFrame)
	deadline := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closing {
			_ = c.SetReadDeadline(time.Now().Add(2*s.o.Heartbeat + s.o.WriteTimeout))
		}
	}
	deadline()
	c.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			s.readEnded(err)
			return
		}
		deadline()
		if mt != websocket.TextMessage {
			s.setReason(websocket.CloseUnsupportedData, "text frames only", false)
			return
		}
		f, err := ParseClientFrame(msg)
		if err != nil {
			s.setReason(websocket.ClosePolicyViolation, truncate(err.Error(), 120), false)
			return
		}
		s.mu.Lock()
		s.resume = f.Resume
		s.mu.Unlock()
		s.poke()
	}
}

func (s *session) readEnded(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// The library already sent close 1009.
		s.setReason(websocket.CloseMessageTooBig, "frame too large", true)
	case errors.As(err, &ce):
		// The library answered the peer's close already.
		s.setReason(ce.Code, "", true)
	default:
		s.setReason(websocket.CloseGoingAway, "", true) // connection gone
	}
}

// writeLoop delivers events until something ends the session. It keeps
// one ping timer instead of a context and timer per Next, which cost more
// than the delivery at high fan-out.
func (s *session) writeLoop(ctx context.Context, pos stream.Position) error {
	sub := s.st.Subscribe(pos)
	defer func() { sub.Close() }()
	ping := time.AfterFunc(s.o.Heartbeat, func() { s.pingDue.Store(true); s.poke() })
	defer ping.Stop()
	var evs []*event.Event
	th := newWSThin(s)
	defer th.stop()
	for {
		if s.pingDue.Swap(false) {
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.o.WriteTimeout)); err != nil {
				return err
			}
			ping.Reset(s.o.Heartbeat)
		}
		s.mu.Lock()
		r := s.resume
		s.resume = nil
		s.mu.Unlock()
		if r != nil {
			// What was left out before is reported before the restart.
			if err := th.flush(); err != nil {
				return err
			}
			sub.Close()
			sub = s.st.Subscribe(stream.After(*r))
		}
		var err error
		evs, err = sub.NextUntil(ctx, evs[:0], s.wake)
		evs = s.o.Filter.Keep(evs) // a nil Filter keeps all
		if len(evs) > 0 {
			if err := th.write(evs); err != nil {
				return err
			}
			clear(evs)
			continue
		}
		if errors.Is(err, stream.ErrIdle) {
			if err := th.flushDue(); err != nil {
				return err
			}
		}
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, stream.ErrIdle) {
			return err
		}
	}
}

// writeEvents writes one text frame per event in one write, from a pooled
// buffer: an idle session holds none. The frames are built by
// wire.AppendFrame, not the library, which would write each on its own.
func (s *session) writeEvents(evs []*event.Event) error {
	bp := writePool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, e := range evs {
		payload := e.JSON()
		if s.o.DataOnly && !e.IsControl() {
			payload = e.Data
		}
		buf = wire.AppendFrame(buf, wire.OpText, payload, nil)
	}
	err := s.writeRaw(buf)
	if err == nil {
		observe(s.o.Observer, evs, len(buf))
	}
	if cap(buf) <= maxPooled {
		*bp = buf[:0]
		writePool.Put(bp)
	}
	return err
}

// writeRaw writes prebuilt frames in one write. Only the writer goroutine
// writes data frames; the library's control frames (pong, close) are whole
// single writes too, and a net.Conn never interleaves two writes.
func (s *session) writeRaw(b []byte) error {
	nc := s.conn.UnderlyingConn()
	if err := nc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
		return err
	}
	if _, err := nc.Write(b); err != nil {
		return fmt.Errorf("ws write: %w", err)
	}
	return nil
}

// finish sends the close frame that says why the session ended.
func (s *session) finish(ctx context.Context, err error) {
	switch {
	case errors.Is(err, stream.ErrClosed):
		s.setReason(websocket.CloseNormalClosure, "stream ended", false)
	case ctx.Err() != nil:
		s.setReason(websocket.CloseGoingAway, "server shutting down", false)
	case err != nil:
		s.setReason(websocket.CloseInternalServerErr, "internal error", false)
	}
	s.setReason(websocket.CloseNormalClosure, "", false)
	s.mu.Lock()
	r := *s.reason
	s.mu.Unlock()
	if !r.sent {
		msg := websocket.FormatCloseMessage(r.code, r.text)
		_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.o.WriteTimeout))
	}
	if r.code == websocket.CloseMessageTooBig {
		lingerAfterClose(s.conn)
	}
}

// lingerAfterClose reads and drops what the client still sends (the rest
// of an oversized frame) for a moment after our close frame. Closing with
// unread data makes the kernel answer with a reset, which can destroy the
// close frame before the client reads why it was dropped. Bounded in time
// and bytes.
func lingerAfterClose(conn *websocket.Conn) {
	nc := conn.UnderlyingConn()
	if nc.SetReadDeadline(time.Now().Add(time.Second)) != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 8<<20))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ServeEcho echoes every text and binary message until the client leaves,
// ctx ends (close 1001) or a message exceeds maxFrame (close 1009).
func ServeEcho(ctx context.Context, conn *websocket.Conn, maxFrame int64) error {
	if maxFrame <= 0 {
		maxFrame = 64 << 10
	}
	conn.SetReadLimit(maxFrame)
	stop := context.AfterFunc(ctx, func() {
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = conn.UnderlyingConn().SetReadDeadline(time.Now().Add(time.Second))
	})
	defer stop()
	for {
		// Whole messages only: an oversized one is never half echoed.
		mt, msg, err := conn.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			lingerAfterClose(conn) // 1009 already sent: let the client read it
			return nil
		}
		if err != nil {
			return nil // client gone or closed
		}
		if err := conn.WriteMessage(mt, msg); err != nil {
			return nil
		}
	}
}
