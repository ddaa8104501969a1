package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

const (
	// handshakeTimeout bounds dialing plus the opening handshake.
	handshakeTimeout = 15 * time.Second
	// wsWriteTimeout bounds one control frame write (pong, close).
	wsWriteTimeout = 5 * time.Second
)

// WebSocket close codes (RFC 6455 §7.4.1) this package sends or reads.
const (
	CloseNormal         = websocket.CloseNormalClosure
	CloseGoingAway      = websocket.CloseGoingAway
	CloseProtocolError  = websocket.CloseProtocolError
	CloseUnsupported    = websocket.CloseUnsupportedData
	CloseNoStatus       = websocket.CloseNoStatusReceived // never on the wire: the close frame had no code
	CloseInvalidPayload = websocket.CloseInvalidFramePayloadData
	ClosePolicy         = websocket.ClosePolicyViolation
	CloseTooBig         = websocket.CloseMessageTooBig
)

// CloseError is the close frame a WebSocket server ended the connection with.
type CloseError struct {
	Code   int // CloseNoStatus when the frame carried no code
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket closed by the server: %d", e.Code)
	}
	return fmt.Sprintf("websocket closed by the server: %d %s", e.Code, e.Reason)
}

// wsConn is one client WebSocket connection (hertz-contrib/websocket,
// dialed by wire.DialWS). One goroutine reads; the library serialises
// the reader's pongs with a cancelling close frame.
type wsConn struct {
	*websocket.Conn

	// idle: every ping, pong or message pushes the read deadline this
	// far ahead, so a connection that carries nothing for idle fails
	// (0: no deadline).
	dmu     sync.Mutex
	idle    time.Duration
	stopped bool // stop was called: the deadline stays in the past
}

// extend pushes the read deadline idle ahead, unless stopped.
func (c *wsConn) extend() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.stopped && c.idle > 0 {
		_ = c.SetReadDeadline(time.Now().Add(c.idle))
	}
}

// stop makes the pending and every later read fail at once.
func (c *wsConn) stop() {
	c.dmu.Lock()
	c.stopped = true
	_ = c.SetReadDeadline(time.Now())
	c.dmu.Unlock()
}

// writeClose sends a close frame with code and reason; errors are
// ignored because the connection is ending anyway.
func (c *wsConn) writeClose(code int, reason string) {
	if len(reason) > 120 {
		reason = reason[:120] // a control frame holds 125 bytes
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(wsWriteTimeout))
}

// dialWS opens a WebSocket to rawURL (ws, wss, http or https) with the
// client's headers, dialer and TLS settings; a refused handshake is an
// *APIError built from the answer like a REST error.
func (c *Client) dialWS(ctx context.Context, rawURL string, maxMessage int, idle time.Duration) (*wsConn, error) {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	o := wire.DialOptions{Header: http.Header{}, TLSConfig: c.tlsConfig}
	c.header(o.Header)
	if t, ok := c.http.Transport.(*http.Transport); ok {
		o.DialContext = t.DialContext
		if o.TLSConfig == nil {
			o.TLSConfig = t.TLSClientConfig
		}
	}
	conn, err := wire.DialWS(hctx, rawURL, o)
	var he *wire.HandshakeError
	switch {
	case errors.As(err, &he):
		return nil, parseAPIError(he.Status, he.Body)
	case errors.Is(err, wire.ErrHandshake):
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	case err != nil:
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	wc := &wsConn{Conn: conn, idle: idle}
	conn.SetReadLimit(int64(maxMessage))
	conn.SetPongHandler(func(string) error { wc.extend(); return nil })
	conn.SetPingHandler(func(data string) error {
		wc.extend()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wsWriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return fmt.Errorf("apiclient: websocket pong: %w", err)
		}
		return nil
	})
	wc.extend()
	return wc, nil
}
