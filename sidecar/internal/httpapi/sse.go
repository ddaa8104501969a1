package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/network"
	"github.com/cloudwego/hertz/pkg/protocol"

	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// serveSSE answers with st as an event stream. Errors before the headers
// go out are JSON answers. The stream itself is served once the handler
// chain returned (startSSE), on a goroutine of its own, so that an idle
// subscriber does not keep Hertz's connection goroutine (8 KiB of stack
// after the middleware chain), its read buffer and its request context.
func (s *Server) serveSSE(ctx context.Context, c *app.RequestContext, st *stream.Stream) error {
	pos, err := resumePosition(c)
	if err != nil {
		return err
	}
	typed, err := queryBool(c, "event_types")
	if err != nil {
		return err
	}
	maxRate, flt, err := s.subscriberQuery(c)
	if err != nil {
		return err
	}
	if s.ctx.Err() != nil {
		return stream.ErrClosed
	}
	tc, ok := ctx.Value(connKey{}).(*trackedConn)
	if !ok {
		return errors.New("sse: the connection did not come through the server's listener")
	}
	c.SetStatusCode(http.StatusOK)
	h := &c.Response.Header
	h.SetContentType("text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// The stream closes the socket when it ends: no next request on it.
	h.SetConnectionClose(true)
	var acc *accessHandoff
	if s.log.Enabled(ctx, slog.LevelDebug) { // a 200's access line is at debug
		acc = &accessHandoff{}
		c.Set(accessHandoffKey, acc)
	}
	// Hertz writes nothing of this response; after its chain returned it
	// runs the hijack handler on the connection goroutine, then releases
	// the request context and ends that goroutine.
	c.Response.HijackWriter(noBody{})
	c.Hijack(func(hc network.Conn) {
		s.startSSE(c, tc, hc, st, sseStart{pos: pos, typed: typed, maxRate: maxRate, filter: flt}, acc)
	})
	return nil
}

// noBody is the response writer Hertz sees for an SSE response, whose
// headers and body the stream writes to the socket itself.
type noBody struct{}

func (noBody) Write([]byte) (int, error) { return 0, errors.New("sse: the stream writes its own body") }
func (noBody) Flush() error              { return nil }
func (noBody) Finalize() error           { return nil }

// sseStream is an SSE response served after its Hertz handler returned:
// it owns the socket (trackedConn.detached) and closes it when it ends.
type sseStream struct {
	s         *Server
	tc        *trackedConn
	st        *stream.Stream
	w         rawChunked
	sse       streamhttp.SSEStream
	tw        streamhttp.TryWriter // nil: not served by the writer shards
	fan       streamhttp.FanSSE
	leave     func()
	cancel    context.CancelFunc
	stopWatch func()
	access    *accessHandoff // nil: no access line (debug disabled)
}

// startSSE is the hijack handler of an SSE response, run by Hertz on its
// connection goroutine once the chain returned (c is still valid until it
// returns). It subscribes, writes the headers and the retry line here, on
// a stack already grown, and leaves the rest to a new goroutine whose
// stack stays at its 2 KiB start while the subscriber idles.
// sseStart is what the request asked for: where to start, whether every
// event names its type (?event_types=1) and the rate cap (?max_rate=N).
type sseStart struct {
	pos     stream.Position
	typed   bool
	maxRate uint64         // ?max_rate=N (0: no cap)
	filter  *filter.Filter // ?filter= (nil: every event)
}

func (s *Server) startSSE(c *app.RequestContext, tc *trackedConn, hc network.Conn, st *stream.Stream, start sseStart, acc *accessHandoff) {
	ss := &sseStream{s: s, tc: tc, st: st, access: acc,
		w: rawChunked{conn: tc.Conn, h: &c.Response.Header, timeout: s.o.WriteTimeout, plain: !c.Request.Header.IsHTTP11()}}
	// Over TLS the bytes go through the TLS connection Hertz made, and the
	// stream runs here: Hertz closes that connection (a close_notify)
	// when this handler returns, so it must not return before the end.
	isTLS := s.o.TLS != nil
	if isTLS {
		ss.w.conn = hc
	}
	if !s.streams.add() {
		// Close began after the handler checked: an empty, ended stream;
		// Hertz closes the socket.
		_ = ss.w.Finalize()
		return
	}
	tc.detached.Store(true)
	tc.busy.Add(1) // never an idle keep-alive connection for expireIdle
	obs, leave := s.subscriber(st.Kind(), TransportSSE)
	ss.leave = leave
	ss.sse = streamhttp.SSEStream{W: &ss.w, Sub: st.Subscribe(start.pos),
		Opts: streamhttp.SSEOptions{Retry: s.o.SSERetry, Heartbeat: s.o.HeartbeatInterval, Observer: obs, EventTypes: start.typed, MaxRate: start.maxRate,
			Filter: start.filter}}
	// A child of the server's ctx, so Close ends it: one cancelCtx, not
	// streamCtx's AfterFunc for an unrelated parent.
	var ctx context.Context
	ctx, ss.cancel = context.WithCancel(s.ctx)
	ss.stopWatch = s.watchClient(tc, ss.cancel)
	err := ss.sse.Start()
	ss.w.h = nil // Hertz reuses the request context: keep nothing of it
	if err != nil {
		ss.end(err)
		return
	}
	if isTLS {
		ss.run(ctx)
		return
	}
	ss.tw = ss.w.tryWriter()
	go ss.run(ctx)
}

// run is the stream's goroutine: small frames only (see SSEStream). Over
// a plain socket the server's writer shards make its deliveries.
func (ss *sseStream) run(ctx context.Context) {
	if ss.tw != nil {
		ss.end(ss.fan.Serve(ctx, ss.s.fan, &ss.sse, ss.tw))
		return
	}
	ss.end(ss.sse.Run(ctx))
}

// end finishes the response (the last chunk, so the client sees a clean
// end, when the stream ended without a write error), releases the
// subscription and closes the socket.
func (ss *sseStream) end(err error) {
	if err == nil {
		err = ss.w.Finalize()
	}
	ss.stopWatch() // before the socket closes and its fd can be reused
	ss.cancel()
	ss.sse.Sub.Close()
	ss.leave()
	ss.tc.busy.Add(-1)
	_ = ss.tc.closeNow() // nothing left to tell the client
	if err != nil {
		ss.s.log.Debug("sse ended", "stream", ss.st.Name(), "err", err)
	}
	ss.access.log(ss.s)
	ss.s.streams.done()
}

// streamGroup counts the SSE streams served after their handler returned,
// which Hertz's Shutdown does not wait for; Server.Close does.
type streamGroup struct {
	mu     sync.Mutex
	n      int
	closed bool
	empty  chan struct{} // made by close; closed once n is 0
}

// add counts one more stream, or reports false once close was called.
func (g *streamGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *streamGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.empty)
	}
}

// close refuses new streams and returns a channel closed when the last
// one ended.
func (g *streamGroup) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		g.empty = make(chan struct{})
		if g.n == 0 {
			close(g.empty)
		}
	}
	return g.empty
}

// rawChunked writes a chunked response straight to the socket, each Write
// one writev (headers first). To an HTTP/1.0 client, which must not be
// sent a transfer coding (RFC 9112 6.1), it writes the body as is and
// ends it by closing the connection (plain), as nginx's default
// proxy_http_version 1.0 needs. Hertz's own writer copies into an output
// buffer that a connection then keeps for as long as the stream lasts:
// 4 KiB resident per idle subscriber.
type rawChunked struct {
	conn    net.Conn
	h       *protocol.ResponseHeader // until the headers went out
	plain   bool                     // HTTP/1.0: no chunked framing
	timeout time.Duration            // bounds each write (0: none)
	armed   time.Time                // when the write deadline was last set
	started bool
	done    bool
	err     error
	size    [24]byte
	vec     [4][]byte
	// For a writer shard (TryWriteFrames): the socket itself, and the
	// rest of a write it did not take whole, in a pooled slice.
	raw   syscall.RawConn
	rest  [][]byte
	restp *[][]byte
}

var crlf = []byte("\r\n")

func (w *rawChunked) Write(p []byte) (int, error) {
	if len(p) == 0 || w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("sse: write after the response ended")
	}
	if w.plain {
		w.err = w.send(p)
	} else {
		size := strconv.AppendInt(w.size[:0], int64(len(p)), 16)
		w.err = w.send(append(size, crlf...), p, crlf)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteFrames writes frames as one chunk in one writev, without copying
// them (streamhttp.FramesWriter).
func (w *rawChunked) WriteFrames(frames [][]byte) (int, error) {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if n == 0 || w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("sse: write after the response ended")
	}
	pp := partsPool.Get().(*[][]byte)
	parts := w.chunk((*pp)[:0], n, frames)
	w.err = w.writev(parts)
	clear(parts) // keep no reference to the caller's bytes
	*pp = parts[:0]
	partsPool.Put(pp)
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

// chunk appends to parts the headers (first write only) and frames, of n
// bytes, as one chunk.
func (w *rawChunked) chunk(parts [][]byte, n int, frames [][]byte) [][]byte {
	parts = w.head(parts)
	if !w.plain {
		parts = append(parts, append(strconv.AppendInt(w.size[:0], int64(n), 16), crlf...))
	}
	parts = append(parts, frames...)
	if !w.plain {
		parts = append(parts, crlf)
	}
	return parts
}

var _ streamhttp.FramesWriter = (*rawChunked)(nil)

// partsPool holds WriteFrames' writev vectors: an idle stream keeps none.
var partsPool = sync.Pool{New: func() any { p := make([][]byte, 0, 64); return &p }}

// Flush does nothing: every Write went out already.
func (w *rawChunked) Flush() error { return w.err }

// Finalize ends the body with the last chunk.
func (w *rawChunked) Finalize() error {
	if w.done || w.err != nil {
		return w.err
	}
	w.done = true
	if w.plain { // the body ends when the connection closes
		if !w.started { // but the headers must go out: nothing else did
			w.err = w.send()
		}
		return w.err
	}
	w.err = w.send([]byte("0\r\n\r\n"))
	return w.err
}

// send writes the headers (first call only) and parts in one writev.
func (w *rawChunked) send(parts ...[]byte) error {
	vec := append(w.head(w.vec[:0]), parts...)
	err := w.writev(vec)
	clear(w.vec[:]) // keep no reference to the caller's bytes
	return err
}

// head appends the response headers to vec on the first write.
func (w *rawChunked) head(vec [][]byte) [][]byte {
	if w.started {
		return vec
	}
	w.started = true
	if w.plain {
		w.h.SetContentLengthBytes(nil) // neither a length nor a coding
		w.h.Del("Transfer-Encoding")
	} else {
		w.h.SetContentLength(-1) // chunked
	}
	return append(vec, w.h.Header())
}

// writev writes vec in one writev (net.Buffers consumes its own copy).
// A connection without writev (TLS) would get a Write, and so a record,
// per part: it gets the parts copied into one Write instead.
func (w *rawChunked) writev(vec [][]byte) error {
	w.armDeadline()
	var err error
	switch w.conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		bufs := net.Buffers(vec)
		_, err = bufs.WriteTo(w.conn)
	default:
		bp := joinPool.Get().(*[]byte)
		b := (*bp)[:0]
		for _, p := range vec {
			b = append(b, p...)
		}
		_, err = w.conn.Write(b)
		if cap(b) <= 64<<10 {
			*bp = b[:0]
			joinPool.Put(bp)
		}
	}
	if err != nil {
		return fmt.Errorf("sse write: %w", err)
	}
	return nil
}

// joinPool holds the buffers of writes to connections without writev.
var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// armDeadline gives the next write at least 3/4 of the timeout: the
// deadline moves only when a quarter of it passed, so a busy stream
// resets the poller's timer a few times per timeout, not on every write.
func (w *rawChunked) armDeadline() {
	if w.timeout <= 0 {
		return
	}
	if now := time.Now(); now.Sub(w.armed) > w.timeout/4 {
		w.armed = now
		_ = w.conn.SetWriteDeadline(now.Add(w.timeout))
	}
}

// watchClient cancels when the client closes the connection, so a quiet
// stream does not hold a subscription until the next write fails. The
// server's hangup watcher does it without a goroutine per connection;
// where it cannot (not Linux), a reader goroutine does. The returned func
// stops the watch before the connection can be closed.
func (s *Server) watchClient(tc *trackedConn, cancel context.CancelFunc) (stop func()) {
	if s.hangups != nil {
		if stop, err := s.hangups.Watch(tc.Conn, cancel); err == nil {
			return stop
		}
	}
	return readWatch(tc.Conn, cancel)
}

// readWatch is watchClient with a goroutine parked in a read (a client
// sends nothing after an SSE request). The returned func stops the watch
// and waits for it.
func readWatch(conn net.Conn, cancel context.CancelFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b [1]byte
		if _, err := conn.Read(b[:]); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				cancel()
			}
		}
	}()
	return func() {
		_ = conn.SetReadDeadline(time.Unix(1, 0))
		<-done
	}
}
