package apiclient

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// handshakeTimeout bounds dialing plus the opening handshake.
	handshakeTimeout = 15 * time.Second
	// wsWriteTimeout bounds one frame write (pong, close, resume).
	wsWriteTimeout = 5 * time.Second
	// wsAcceptGUID is appended to the key to compute the accept (§1.3).
	wsAcceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// errCloseSent is returned by writes after our close frame went out.
var errCloseSent = errors.New("apiclient: websocket: close already sent")

// wsConn is one client WebSocket connection. One goroutine reads
// (readMessage); writes are serialised so that the reader's pongs and a
// cancelling close frame never interleave on the wire.
type wsConn struct {
	nc net.Conn
	rd wsReader

	wmu       sync.Mutex
	closeSent bool
	wbuf      []byte

	// idle: every read first pushes the read deadline this far ahead, so
	// a connection that carries nothing for idle fails (0: no deadline).
	dmu     sync.Mutex
	idle    time.Duration
	stopped bool // stop was called: the deadline stays in the past
}

// Read is the bufio reader's source: it extends the idle deadline.
func (c *wsConn) Read(p []byte) (int, error) {
	c.dmu.Lock()
	if !c.stopped && c.idle > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.idle))
	}
	c.dmu.Unlock()
	return c.nc.Read(p)
}

// stop makes the pending and every later read fail at once.
func (c *wsConn) stop() {
	c.dmu.Lock()
	c.stopped = true
	_ = c.nc.SetReadDeadline(time.Now())
	c.dmu.Unlock()
}

// writeFrame sends one final frame, masked with a fresh random key. After
// a close frame nothing more may be sent (§5.5.1).
func (c *wsConn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errCloseSent
	}
	var key [4]byte
	_, _ = rand.Read(key[:]) // never fails (crypto/rand)
	c.wbuf = appendFrame(c.wbuf[:0], op, p, &key)
	if op == opClose {
		c.closeSent = true
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(wsWriteTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

// writeClose sends a close frame with code and reason; errors are
// ignored because the connection is ending anyway.
func (c *wsConn) writeClose(code int, reason string) {
	_ = c.writeFrame(opClose, closePayload(code, reason))
}

// onControl answers pings and echoes the server's close (§5.5).
func (c *wsConn) onControl(op byte, p []byte) error {
	switch op {
	case opPing:
		if err := c.writeFrame(opPong, p); err != nil && !errors.Is(err, errCloseSent) {
			return fmt.Errorf("apiclient: websocket pong: %w", err)
		}
	case opClose:
		// Echo the code: an empty close answers an empty one.
		if len(p) >= 2 {
			p = p[:2]
		}
		_ = c.writeFrame(opClose, p)
	}
	return nil
}

// Close closes the TCP connection.
func (c *wsConn) Close() error { return c.nc.Close() }

// dialWS opens a WebSocket to rawURL (ws, wss, http or https); a refused
// handshake is an *APIError built from the answer like a REST error.
func (c *Client) dialWS(ctx context.Context, rawURL string, maxMessage int) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("apiclient: websocket URL: %w", err)
	}
	secure := u.Scheme == "https" || u.Scheme == "wss"
	u.Scheme = map[bool]string{false: "http", true: "https"}[secure]
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	nc, err := c.dialTCP(hctx, u, secure)
	if err != nil {
		return nil, fmt.Errorf("apiclient: websocket connect %s: %w", u.Redacted(), err)
	}
	conn := &wsConn{nc: nc}
	conn.rd = wsReader{r: bufio.NewReaderSize(conn, 4096), max: maxMessage, onControl: conn.onControl}
	if err := conn.handshake(hctx, u, c.header); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return conn, nil
}

// dialTCP dials u's host with the dialer of the HTTP client's transport
// if it has one (WithHTTPClient), and wraps it in TLS if secure.
func (c *Client) dialTCP(ctx context.Context, u *url.URL, secure bool) (net.Conn, error) {
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "80", true: "443"}[secure]
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	dial := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	tlsConfig := c.tlsConfig
	if t, ok := c.http.Transport.(*http.Transport); ok {
		if t.DialContext != nil {
			dial = t.DialContext
		}
		if tlsConfig == nil {
			tlsConfig = t.TLSClientConfig
		}
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil || !secure {
		return nc, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsConfig != nil {
		cfg = tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"http/1.1"} // the upgrade is HTTP/1.1 only
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return tc, nil
}

// handshake sends the opening request and checks the answer (§4.1). ctx
// ending interrupts it through the connection's deadline.
func (c *wsConn) handshake(ctx context.Context, u *url.URL, header func(http.Header)) (err error) {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = c.nc.SetDeadline(time.Now())
	})
	defer func() {
		if !stop() {
			<-done
			err = fmt.Errorf("apiclient: websocket handshake with %s: %w", u.Redacted(), context.Cause(ctx))
		}
		_ = c.nc.SetDeadline(time.Time{})
	}()
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	key := base64.StdEncoding.EncodeToString(rnd[:])
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	header(req.Header)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := req.Write(c.nc); err != nil {
		return fmt.Errorf("apiclient: websocket handshake with %s: %w", u.Redacted(), err)
	}
	resp, err := http.ReadResponse(c.rd.r, req)
	if err != nil {
		return fmt.Errorf("apiclient: websocket handshake with %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return readAPIError(resp.StatusCode, resp.Body)
	}
	if err := checkUpgrade(resp.Header, key); err != nil {
		return fmt.Errorf("%w: websocket handshake with %s: %v", ErrProtocol, u.Redacted(), err)
	}
	return nil
}

// checkUpgrade checks a 101 answer's headers against our request.
func checkUpgrade(h http.Header, key string) error {
	sum := sha1.Sum([]byte(key + wsAcceptGUID))
	switch {
	case !strings.EqualFold(h.Get("Upgrade"), "websocket"):
		return fmt.Errorf("upgrade header %q, want websocket", h.Get("Upgrade"))
	case !headerHasToken(h, "Connection", "upgrade"):
		return fmt.Errorf("connection header %q, want Upgrade", h.Get("Connection"))
	case h.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return fmt.Errorf("Sec-WebSocket-Accept %q does not match our key", h.Get("Sec-WebSocket-Accept"))
	case h.Get("Sec-WebSocket-Extensions") != "":
		return fmt.Errorf("extension %q that was not asked for", h.Get("Sec-WebSocket-Extensions"))
	case h.Get("Sec-WebSocket-Protocol") != "":
		return fmt.Errorf("subprotocol %q that was not asked for", h.Get("Sec-WebSocket-Protocol"))
	}
	return nil
}

// headerHasToken reports whether the comma-separated header name lists
// token (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
