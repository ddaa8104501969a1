package streamhttp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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

// WSConn is an upgraded connection as ServeWS takes it.
type WSConn struct {
	// Conn carries frames both ways; ServeWS does not close it.
	Conn net.Conn
	// Buffered is what the client sent after its handshake that the
	// HTTP server already read (a resume request sent at once).
	Buffered []byte
	// Watcher, if set, says when Conn is readable, so that a quiet
	// client costs no goroutine parked in a read; without it (or for a
	// connection it cannot watch) one reader goroutine runs.
	Watcher *HangupWatcher
}

// closeReason is why a session ends, sent as the close frame.
type closeReason struct {
	code int
	text string
	sent bool // no close frame to send (echoed already, or the client is gone)
}

// errSilent ends a session whose client sent nothing, not even a pong,
// for two heartbeats and a write timeout.
var errSilent = errors.New("ws: client silent")

// WSSession is one stream socket (StartWS): Run's goroutine writes events
// and pings; client frames are read in bursts, each on a short-lived
// goroutine started when the socket is readable (WSConn.Watcher), or by
// one reader goroutine where nothing can watch the socket.
type WSSession struct {
	nc     net.Conn
	st     *stream.Stream
	o      WSOptions
	ctx    context.Context
	cancel context.CancelFunc

	// The writer's state (Run's goroutine only).
	sub  *stream.Subscription
	ping *time.Timer
	th   *wsThin
	evs  []*event.Event

	// wake interrupts the writer's current Next (a resume request or a
	// ping due); one buffered slot, so a poke is never lost or blocking.
	wake    chan time.Time
	pingDue atomic.Bool
	heard   atomic.Int64 // UnixNano of the last frame from the client

	rearm     func() error // re-enables the readable callback
	stopWatch func()
	bursts    sync.WaitGroup // running read bursts

	mu      sync.Mutex
	pending []byte       // WSConn.Buffered, until the first burst takes it
	reading bool         // a burst runs: the watcher's callback starts none
	resume  *uint64      // pending {"resume"} request
	reason  *closeReason // set once by whoever ends the session first
	// closing: the writer is done and gave the reader a last deadline,
	// which the reader must not push back; no burst starts any more.
	closing bool
}

func (s *WSSession) poke() {
	select {
	case s.wake <- time.Time{}:
	default:
	}
}

// shuttingDown is the reason of the close 1001 a server's Close sends.
const shuttingDown = "server shutting down"

// ServeWS streams st to c from pos until ctx ends (close 1001), the
// stream closes (1000), the client goes away or stays silent, sends a bad
// frame (1002, 1003 or 1008) or an oversized one (1009). Each event is one
// text frame holding its JSON envelope; everything one Next returns goes
// out in a single write, bounded by WriteTimeout like an SSE write.
func ServeWS(ctx context.Context, c WSConn, st *stream.Stream, pos stream.Position, o WSOptions) error {
	return StartWS(ctx, c, st, pos, o).Run()
}

// StartWS is ServeWS in two steps, as SSEStream is: StartWS subscribes,
// makes the ping timer and arms the readable callback on the caller's
// (already grown) stack, and Run, on a new goroutine, keeps its state in
// the session rather than in locals, so that its stack stays at its
// 2 KiB start while the client idles: one grown to 4 KiB never shrinks.
func StartWS(ctx context.Context, c WSConn, st *stream.Stream, pos stream.Position, o WSOptions) *WSSession {
	s := &WSSession{nc: c.Conn, st: st, o: o.withDefaults(), wake: make(chan time.Time, 1), pending: c.Buffered}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.heard.Store(time.Now().UnixNano())
	s.sub = st.Subscribe(pos)
	s.ping = time.AfterFunc(s.o.Heartbeat, s.pingDueNow)
	s.th = newWSThin(s)
	s.startReading(c.Watcher)
	return s
}

// Run serves the session until it ends, and always returns nil: how it
// ended went to the client as the close frame.
func (s *WSSession) Run() error {
	err := s.writeLoop()
	s.ping.Stop()
	s.th.stop()
	s.sub.Close()
	s.finish(s.ctx, err)
	s.stopReading()
	s.cancel()
	return nil
}

func (s *WSSession) pingDueNow() { s.pingDue.Store(true); s.poke() }

func (s *WSSession) setReason(code int, text string, sent bool) {
	s.mu.Lock()
	if s.reason == nil {
		s.reason = &closeReason{code: code, text: text, sent: sent}
	}
	s.mu.Unlock()
}

// silentFor is how long a client may send nothing before it is dropped.
func (s *WSSession) silentFor() time.Duration { return 2*s.o.Heartbeat + s.o.WriteTimeout }

// startReading arms the readable callback, or starts the reader goroutine
// where the socket cannot be watched.
func (s *WSSession) startReading(w *HangupWatcher) {
	if w != nil {
		rearm, stop, err := w.WatchReadable(s.nc, s.onReadable)
		if err == nil {
			s.rearm, s.stopWatch = rearm, stop
			if len(s.pending) > 0 {
				s.onReadable() // already read by the server: no readiness to wait for
			}
			return
		}
	}
	s.bursts.Add(1)
	go func() {
		defer s.bursts.Done()
		for s.readBurst() {
		}
	}()
}

// onReadable starts a read burst (the watcher's callback; one-shot until
// the burst rearms it).
func (s *WSSession) onReadable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.reading {
		return // a running burst rearms when it ends
	}
	s.reading = true
	s.bursts.Add(1)
	go func() {
		defer s.bursts.Done()
		ok := s.readBurst()
		s.mu.Lock()
		s.reading = false // before rearm, or its callback finds one running
		s.mu.Unlock()
		if !ok {
			return
		}
		if err := s.rearm(); err != nil {
			s.setReason(websocket.CloseGoingAway, "", true)
			s.cancel()
		}
	}()
}

// stopReading ends reading: no new burst, a last deadline for a running
// one (the peer may never answer our close frame), and waits for it.
func (s *WSSession) stopReading() {
	s.mu.Lock()
	s.closing = true
	_ = s.nc.SetReadDeadline(time.Now().Add(time.Second))
	s.mu.Unlock()
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.bursts.Wait()
}

func (s *WSSession) readDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		_ = s.nc.SetReadDeadline(time.Now().Add(s.silentFor()))
	}
}

// readBurst reads and handles client frames until none is left buffered
// and no message is half read; false when reading ended the session.
func (s *WSSession) readBurst() bool {
	br := readerPool.Get().(*bufio.Reader)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	s.mu.Lock()
	var src io.Reader = s.nc
	if len(s.pending) > 0 {
		src = io.MultiReader(bytes.NewReader(s.pending), s.nc)
		s.pending = nil
	}
	s.mu.Unlock()
	br.Reset(src)
	var msg clientMessage
	for {
		s.readDeadline()
		op, p, err := nextFrame(br, &msg, s.o.MaxFrame)
		if err != nil {
			s.readEnded(err)
			s.cancel()
			return false
		}
		s.heard.Store(time.Now().UnixNano())
		if !s.handleFrame(op, p) {
			s.cancel()
			return false
		}
		if br.Buffered() == 0 && msg.op == 0 {
			return true
		}
	}
}

// handleFrame acts on a control frame or a whole message (op 0: a part
// of one); false ends the session.
func (s *WSSession) handleFrame(op byte, p []byte) bool {
	switch op {
	case 0, wire.OpPong:
		return true
	case wire.OpPing:
		return s.writeControl(wire.OpPong, p) == nil
	case wire.OpClose:
		code := websocket.CloseNoStatusReceived
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		// Echo the code, as the library's default close handler did.
		_ = s.writeControl(wire.OpClose, websocket.FormatCloseMessage(code, ""))
		s.setReason(code, "", true)
		return false
	case wire.OpBinary:
		s.setReason(websocket.CloseUnsupportedData, "text frames only", false)
		return false
	}
	f, err := ParseClientFrame(p)
	if err != nil {
		s.setReason(websocket.ClosePolicyViolation, truncate(err.Error(), 120), false)
		return false
	}
	s.mu.Lock()
	s.resume = f.Resume
	s.mu.Unlock()
	s.poke()
	return true
}

func (s *WSSession) readEnded(err error) {
	switch {
	case errors.Is(err, errTooBig):
		s.setReason(websocket.CloseMessageTooBig, "frame too large", false)
	case errors.Is(err, errProtocol):
		s.setReason(websocket.CloseProtocolError, truncate(err.Error(), 120), false)
	default:
		s.setReason(websocket.CloseGoingAway, "", true) // connection gone or silent
	}
}

// writeLoop delivers events until something ends the session. It keeps
// one ping timer instead of a context and timer per Next, which cost more
// than the delivery at high fan-out; each ping also checks the client was
// heard from lately, which a read deadline did while a reader waited.
func (s *WSSession) writeLoop() error {
	for {
		if s.pingDue.Swap(false) {
			if err := s.pingNow(); err != nil {
				return err
			}
		}
		s.mu.Lock()
		r := s.resume
		s.resume = nil
		s.mu.Unlock()
		if r != nil {
			// What was left out before is reported before the restart.
			if err := s.th.flush(); err != nil {
				return err
			}
			s.sub.Close()
			s.sub = s.st.Subscribe(stream.After(*r))
		}
		var err error
		s.evs, err = s.sub.NextUntil(s.ctx, s.evs[:0], s.wake)
		s.evs = s.o.Filter.Keep(s.evs) // a nil Filter keeps all
		if len(s.evs) > 0 {
			if err := s.th.write(s.evs); err != nil {
				return err
			}
			clear(s.evs)
			continue
		}
		// Also when a filter kept nothing of a chatty stream: its Next
		// never idles, so the timer's wake would wait for a quiet moment.
		if err := s.th.flushDue(errors.Is(err, stream.ErrIdle)); err != nil {
			return err
		}
		if err != nil && s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if err != nil && !errors.Is(err, stream.ErrIdle) {
			return err
		}
	}
}

// pingNow drops a client silent for too long, else pings it.
func (s *WSSession) pingNow() error {
	if time.Since(time.Unix(0, s.heard.Load())) > s.silentFor() {
		return errSilent
	}
	if err := s.writeControl(wire.OpPing, nil); err != nil {
		return err
	}
	s.ping.Reset(s.o.Heartbeat)
	return nil
}

// writeEvents writes one text frame per event in one write, from a pooled
// buffer: an idle session holds none. The frames are built by
// wire.AppendFrame, not the library, which would write each on its own.
func (s *WSSession) writeEvents(evs []*event.Event) error {
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

// writeControl writes one control frame (payload up to 125 bytes).
func (s *WSSession) writeControl(op byte, p []byte) error {
	var b [2 + maxControl]byte
	return s.writeRaw(wire.AppendFrame(b[:0], op, p[:min(len(p), maxControl)], nil))
}

// writeRaw writes whole frames in one write, within WriteTimeout: a client
// that stops reading is dropped once a write waited that long, as an SSE
// one is. The writer goroutine writes data frames and pings; a read burst
// writes pongs and a close echo: a net.Conn never interleaves two writes.
func (s *WSSession) writeRaw(b []byte) error {
	if err := s.nc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout)); err != nil {
		return err
	}
	if _, err := s.nc.Write(b); err != nil {
		return fmt.Errorf("ws write: %w", err)
	}
	return nil
}

// finish sends the close frame that says why the session ended.
func (s *WSSession) finish(ctx context.Context, err error) {
	switch {
	case errors.Is(err, stream.ErrClosed):
		s.setReason(websocket.CloseNormalClosure, "stream ended", false)
	case errors.Is(err, errSilent):
		s.setReason(websocket.CloseGoingAway, "", true)
	case ctx.Err() != nil:
		s.setReason(websocket.CloseGoingAway, shuttingDown, false)
	case err != nil:
		s.setReason(websocket.CloseInternalServerErr, "internal error", false)
	}
	s.setReason(websocket.CloseNormalClosure, "", false)
	s.mu.Lock()
	r := *s.reason
	s.mu.Unlock()
	if !r.sent {
		_ = s.writeControl(wire.OpClose, websocket.FormatCloseMessage(r.code, r.text))
	}
	if r.code == websocket.CloseMessageTooBig {
		lingerAfterClose(s.nc)
	}
}

// lingerAfterClose reads and drops what the client still sends (the rest
// of an oversized frame) for a moment after our close frame. Closing with
// unread data makes the kernel answer with a reset, which can destroy the
// close frame before the client reads why it was dropped. Bounded in time
// and bytes.
func lingerAfterClose(nc net.Conn) {
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

// SayShuttingDown sends close 1001 "server shutting down", the close a
// session gets when the server stops, to a client whose session never
// started because the server began stopping after its handshake.
func SayShuttingDown(conn *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, shuttingDown)
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

// ServeEcho echoes every text and binary message until the client leaves,
// ctx ends (close 1001) or a message exceeds maxFrame (close 1009).
func ServeEcho(ctx context.Context, conn *websocket.Conn, maxFrame int64) error {
	if maxFrame <= 0 {
		maxFrame = 64 << 10
	}
	conn.SetReadLimit(maxFrame)
	stop := context.AfterFunc(ctx, func() {
		SayShuttingDown(conn)
		_ = conn.UnderlyingConn().SetReadDeadline(time.Now().Add(time.Second))
	})
	defer stop()
	for {
		// Whole messages only: an oversized one is never half echoed.
		mt, msg, err := conn.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			lingerAfterClose(conn.UnderlyingConn()) // 1009 already sent: let the client read it
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
