package queueapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// serveWS upgrades /v2/ws. A token on the upgrade request (header,
// cookie or access_token) authenticates the connection; without one the
// client sends an "authenticate" frame first. X-Project-Id and Client-ID
// on the upgrade request are defaults for frames that omit them.
func (api *API) serveWS(ctx context.Context, c *app.RequestContext) {
	if !strings.EqualFold(string(c.GetHeader("Upgrade")), "websocket") {
		api.writeError(c, httperr.New(http.StatusBadRequest, "websocket_required", "this route is a WebSocket: send an Upgrade: websocket request"))
		return
	}
	var p *auth.Principal
	tok := auth.TokenFrom(c, true)
	limitKey := ratelimit.Client(tok, c.RemoteAddr().String())
	if api.a.Enabled() && tok != "" {
		pr, err := api.a.Authenticate(tok)
		if err != nil {
			api.writeError(c, err)
			return
		}
		p = &pr
	}
	project, client := string(c.GetHeader("X-Project-Id")), string(c.GetHeader("Client-ID"))
	if !api.enter() {
		api.writeError(c, httperr.New(http.StatusServiceUnavailable, "unavailable", "shutting down"))
		return
	}
	var upErr error
	up := websocket.HertzUpgrader{
		CheckOrigin: func(*app.RequestContext) bool { return true }, // bearer tokens, not cookies alone, carry authority
		Error: func(_ *app.RequestContext, status int, reason error) {
			upErr = httperr.New(status, "bad_handshake", "%s", reason)
		},
	}
	// On success the session runs later, on the hijacked connection, after
	// this handler returned.
	err := up.Upgrade(c, func(conn *websocket.Conn) {
		defer api.wg.Done()
		s := newSession(api, conn, p, project, client)
		s.limitKey = limitKey
		s.run()
	})
	if upErr == nil && err != nil {
		upErr = httperr.New(http.StatusBadRequest, "bad_handshake", "%s", err)
	}
	if upErr != nil {
		api.wg.Done()
		api.writeError(c, upErr)
	}
}

// enter registers a session unless the API is closing.
func (api *API) enter() bool {
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.ctx.Err() != nil {
		return false
	}
	api.wg.Add(1)
	return true
}

// session is one WebSocket: a reader that dispatches frames to bounded
// concurrent handlers, and one writer goroutine that owns every write.
type session struct {
	api    *API
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	out    chan []byte
	pongs  chan string // answers to the peer's pings, written by the writer
	// peerClose is the close code the peer sent (0: none), echoed by the
	// writer when the session ends.
	peerClose atomic.Int32
	sem       chan struct{}
	wg        sync.WaitGroup

	defProject, defClient string

	mu        sync.Mutex
	principal *auth.Principal
	subs      map[string]*subscription
	// limitKey is the client its writes count against (Options.Writes):
	// the token of the upgrade or of the last authenticate, else the
	// address.
	limitKey string
}

func newSession(api *API, conn *websocket.Conn, p *auth.Principal, project, client string) *session {
	s := &session{
		api: api, conn: conn, principal: p, defProject: project, defClient: client,
		out: make(chan []byte, 256), pongs: make(chan string, 1), sem: make(chan struct{}, api.o.MaxInFlight),
		subs: map[string]*subscription{},
	}
	s.ctx, s.cancel = context.WithCancel(api.ctx)
	return s
}

func (s *session) run() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	s.readLoop()
	s.cancel()
	s.wg.Wait() // handlers and subscriptions
	<-writerDone
	_ = s.conn.Close()
}

// send queues a frame for the writer; false once the session ended.
func (s *session) send(b []byte) bool {
	select {
	case s.out <- b:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *session) readDeadline() {
	_ = s.conn.SetReadDeadline(time.Now().Add(2*s.api.o.Heartbeat + s.api.o.WriteTimeout))
}

func (s *session) readLoop() {
	c := s.conn
	// Frames up to MaxBodyBytes are read; larger ones (up to a hard cap)
	// are drained and refused, so the connection survives them.
	c.SetReadLimit(int64(4*s.api.o.MaxBodyBytes) + 1<<20)
	s.readDeadline()
	c.SetPongHandler(func(string) error { s.readDeadline(); return nil })
	// The writer batches frames straight onto the connection, so it must
	// be the only goroutine that writes: pongs and the close echo, which
	// the reader would write itself by default, are left to it.
	c.SetPingHandler(func(data string) error {
		select {
		case s.pongs <- data:
		default: // one pending pong answers the latest pings well enough
		}
		return nil
	})
	c.SetCloseHandler(func(code int, _ string) error {
		s.peerClose.Store(int32(code))
		return nil
	})
	var buf bytes.Buffer
	var lr io.LimitedReader // one per session, not one per frame
	for s.ctx.Err() == nil {
		mt, r, err := c.NextReader()
		if err != nil {
			return
		}
		s.readDeadline()
		lr.R, lr.N = r, int64(s.api.o.MaxBodyBytes)+1
		data, err := readFrame(&buf, &lr)
		if err != nil {
			return
		}
		if len(data) > s.api.o.MaxBodyBytes {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			s.send(errorReply(nil, httperr.New(http.StatusRequestEntityTooLarge, "too_large", "frames are limited to %d bytes", s.api.o.MaxBodyBytes)))
			continue
		}
		if mt != websocket.TextMessage {
			s.send(errorReply(nil, httperr.New(http.StatusBadRequest, "unsupported_frame", "only text frames holding JSON are accepted")))
			continue
		}
		if !utf8.Valid(data) {
			// Refused at the door, as REST bodies are: stored, it would
			// be delivered in text frames no client can read.
			s.send(errorReply(nil, httperr.New(http.StatusBadRequest, "invalid_utf8", "the frame is not valid UTF-8 (JSON text must be)")))
			continue
		}
		f, err := decodeFrame(data)
		if err != nil {
			s.send(errorReply(validJSON(data), httperr.New(http.StatusBadRequest, "malformed_frame", "%s", err)))
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		s.wg.Go(func() {
			defer func() { <-s.sem }()
			if b := s.handle(f); b != nil {
				s.send(b)
			}
		})
	}
}

// readFrame reads r through buf (reused across frames) and returns an
// exact-size copy, which the handler may keep: io.ReadAll's doubling from
// 512 bytes was the largest allocator of a busy connection. The copy is
// the frame's own and never written to: the strings read from it share
// its bytes (see frame).
func readFrame(buf *bytes.Buffer, r io.Reader) ([]byte, error) {
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	data := bytes.Clone(buf.Bytes())
	if buf.Cap() > maxKeptReadBuffer {
		*buf = bytes.Buffer{} // an idle connection does not keep one big frame's room
	}
	return data, nil
}

const maxKeptReadBuffer = 64 << 10

// validJSON returns data when it is JSON (to echo it), else nil.
func validJSON(data []byte) []byte {
	if json.Valid(data) && utf8.Valid(data) {
		return data
	}
	return nil
}

func (s *session) writeLoop() {
	ping := time.NewTicker(s.api.o.Heartbeat)
	defer ping.Stop()
	var batch []byte
	for {
		select {
		case b := <-s.out:
			var err error
			if batch, err = s.writeQueued(b, batch); err != nil {
				s.cancel()
				return
			}
		case data := <-s.pongs:
			if err := s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.api.o.WriteTimeout)); err != nil {
				s.cancel()
				return
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.api.o.WriteTimeout)); err != nil {
				s.cancel()
				return
			}
		case <-s.ctx.Done():
			s.writeClose()
			return
		}
	}
}

func (s *session) writeClose() {
	code, text := websocket.CloseNormalClosure, ""
	if s.api.ctx.Err() != nil {
		code, text = websocket.CloseGoingAway, "server shutting down"
	} else if pc := s.peerClose.Load(); pc != 0 {
		code = int(pc) // echo the peer's close, as the default handler did
	}
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	// Unblock the reader: the peer may never answer our close.
	_ = s.conn.SetReadDeadline(time.Now())
}

// maxWriteBatch bounds the bytes of queued frames written in one go.
const maxWriteBatch = 256 << 10

// writeQueued writes b and whatever else is already queued. One frame
// goes through the WebSocket library; several are framed by
// wire.AppendFrame into one buffer (reused: batch) and written with one
// syscall, which under load halves the writes of a busy connection.
func (s *session) writeQueued(b, batch []byte) ([]byte, error) {
	var more []byte
	select {
	case more = <-s.out:
	default:
		// Let the handlers that are about to reply run first: under load
		// their frames then share this write, which saves a syscall per
		// frame; an idle session finds nothing and writes at once.
		runtime.Gosched()
		select {
		case more = <-s.out:
		default:
			err := s.write(b)
			recycle(b)
			return batch, err
		}
	}
	batch = wire.AppendFrame(batch[:0], wire.OpText, b, nil)
	batch = wire.AppendFrame(batch, wire.OpText, more, nil)
	recycle(b)
	recycle(more)
	for len(batch) < maxWriteBatch {
		select {
		case more = <-s.out:
			batch = wire.AppendFrame(batch, wire.OpText, more, nil)
			recycle(more)
			continue
		default:
		}
		break
	}
	nc := s.conn.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(s.api.o.WriteTimeout))
	_, err := nc.Write(batch)
	if cap(batch) > maxWriteBatch*2 {
		batch = nil
	}
	return batch, err
}

func (s *session) write(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.api.o.WriteTimeout))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// handle runs one frame and returns its reply.
func (s *session) handle(f frame) []byte {
	switch f.Action {
	case "authenticate":
		return s.authenticate(f)
	case "subscription_create":
		return s.subscribe(f)
	case "subscription_delete":
		return s.unsubscribe(f)
	case "subscription_list":
		return s.listSubscriptions(f)
	}
	o, ok := ops[f.Action]
	if !ok {
		return errorReply(f.raw, httperr.New(http.StatusBadRequest, "unknown_action", "unknown action %q", f.Action))
	}
	w, err := s.identify(f, o)
	if err != nil {
		return errorReply(f.raw, err)
	}
	if o.scope == ScopeWrite {
		s.mu.Lock()
		key := s.limitKey
		s.mu.Unlock()
		if ok, secs := s.api.o.Writes.Allow(key, time.Now()); !ok {
			return errorReply(f.raw, httperr.New(http.StatusTooManyRequests, "rate_limited",
				"too many writes from this client; retry after %ds", secs))
		}
	}
	var deleted *idsParams
	dec := func(v any) error {
		if len(f.Body) == 0 || string(f.Body) == "null" {
			return nil
		}
		// The frame was valid JSON, so its body is: the hot bodies are
		// walked, the rest decoded.
		if !walkParams(f.Body, v) {
			if err := decodeObject(f.Body, v); err != nil {
				return err
			}
		}
		if p, ok := v.(*idsParams); ok {
			deleted = p
		}
		return nil
	}
	status, out, err := o.run(s.ctx, s.api, w, dec)
	if err != nil {
		return errorReply(f.raw, err)
	}
	if deleted != nil && status == http.StatusNoContent {
		s.acked(w.key(deleted.QueueName), deleted)
	}
	rep := reply(f.raw, status, out)
	if e, ok := out.(encoded); ok {
		recycle(e) // copied into rep; over REST it is the response itself
	}
	return rep
}

func (s *session) identify(f frame, o op) (who, error) {
	project, client := f.header("X-Project-Id"), f.header("Client-ID")
	if project == "" {
		project = s.defProject
	}
	if client == "" {
		client = s.defClient
	}
	s.mu.Lock()
	p := s.principal
	s.mu.Unlock()
	return s.api.identify(p, project, client, o)
}

func (s *session) authenticate(f frame) []byte {
	if !s.api.a.Enabled() {
		return reply(f.raw, http.StatusOK, map[string]any{"authenticated": false, "message": "auth is off"})
	}
	tok := f.header("X-Auth-Token")
	if h := f.header("Authorization"); tok == "" && len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		tok = strings.TrimSpace(h[7:])
	}
	p, err := s.api.a.Authenticate(tok)
	if err != nil {
		return errorReply(f.raw, err)
	}
	s.mu.Lock()
	s.principal = &p
	s.limitKey = ratelimit.Client(tok, s.conn.RemoteAddr().String())
	s.mu.Unlock()
	return reply(f.raw, http.StatusOK, map[string]any{"authenticated": true, "tenant": p.Tenant})
}
