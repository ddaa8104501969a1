package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"
)

// DialOptions say how DialWS reaches a server.
type DialOptions struct {
	// Header goes with the opening request (Authorization, X-Project-Id…).
	Header http.Header
	// DialContext opens the TCP connection (nil: a net.Dialer with
	// keep-alives).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss:// and https:// (nil: the system roots).
	TLSConfig *tls.Config
	// ReadBufferSize and WriteBufferSize size the connection's buffers
	// (0: the library's 4 KiB).
	ReadBufferSize, WriteBufferSize int
	// WriteBufferPool, if set, lends write buffers instead of giving each
	// connection its own (a client that writes little and holds many).
	WriteBufferPool websocket.BufferPool
}

// HandshakeError is a server's refusal of the opening handshake.
type HandshakeError struct {
	Status int
	Header http.Header
	// Body is the start of the answer's body (at most 64 KiB).
	Body []byte
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake refused: %d %s", e.Status, http.StatusText(e.Status))
}

// ErrHandshake is a 101 answer that does not complete the handshake.
var ErrHandshake = errors.New("websocket: bad handshake")

// DialWS opens a client WebSocket to rawURL (ws, wss, http or https) with
// hertz-contrib/websocket. The library prepares the request, checks the
// answer and runs the connection; the opening exchange itself goes over a
// connection dialed here, so a caller's dialer and TLS settings apply.
// ctx bounds the dial and the handshake; a refused handshake is a
// *HandshakeError.
func DialWS(ctx context.Context, rawURL string, o DialOptions) (*websocket.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("websocket URL: %w", err)
	}
	secure := u.Scheme == "https" || u.Scheme == "wss"
	u.Scheme = map[bool]string{false: "http", true: "https"}[secure]
	nc, err := dialTCP(ctx, u, secure, o)
	if err != nil {
		return nil, fmt.Errorf("websocket connect %s: %w", u.Redacted(), err)
	}
	conn, err := handshake(ctx, nc, u, o)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return conn, nil
}

// dialTCP dials u's host and wraps the connection in TLS if secure.
func dialTCP(ctx context.Context, u *url.URL, secure bool, o DialOptions) (net.Conn, error) {
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "80", true: "443"}[secure]
	}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	nc, err := dial(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil || !secure {
		return nc, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
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

// handshake sends the opening request and hands the answer to the
// library. ctx ending interrupts it through the connection's deadline.
func handshake(ctx context.Context, nc net.Conn, u *url.URL, o DialOptions) (_ *websocket.Conn, err error) {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = nc.SetDeadline(time.Now())
	})
	defer func() {
		if !stop() {
			<-done
			err = fmt.Errorf("websocket handshake with %s: %w", u.Redacted(), context.Cause(ctx))
		}
		_ = nc.SetDeadline(time.Time{})
	}()
	up := &websocket.ClientUpgrader{ReadBufferSize: o.ReadBufferSize, WriteBufferSize: o.WriteBufferSize, WriteBufferPool: o.WriteBufferPool}
	preq := protocol.AcquireRequest()
	defer protocol.ReleaseRequest(preq)
	up.PrepareRequest(preq)
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: o.Header.Clone(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	preq.Header.VisitAll(func(k, v []byte) { req.Header.Set(string(k), string(v)) })
	if err := req.Write(nc); err != nil {
		return nil, fmt.Errorf("websocket handshake with %s: %w", u.Redacted(), err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake with %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &HandshakeError{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}
	return upgrade(up, preq, resp, &bufferedConn{Conn: nc, br: br}, u)
}

// upgrade checks the 101 answer with the library and makes its connection.
func upgrade(up *websocket.ClientUpgrader, preq *protocol.Request, resp *http.Response, bc *bufferedConn, u *url.URL) (*websocket.Conn, error) {
	// Nothing was offered, so nothing may be accepted: the library would
	// switch compression on for any server that answers with it.
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, fmt.Errorf("%w with %s: extension %q that was not asked for", ErrHandshake, u.Redacted(), ext)
	}
	if sp := resp.Header.Get("Sec-WebSocket-Protocol"); sp != "" {
		return nil, fmt.Errorf("%w with %s: subprotocol %q that was not asked for", ErrHandshake, u.Redacted(), sp)
	}
	presp := &protocol.Response{}
	presp.SetStatusCode(resp.StatusCode)
	for k, vs := range resp.Header {
		for _, v := range vs {
			presp.Header.Add(k, v)
		}
	}
	presp.SetBodyStream(bc, -1)
	conn, err := up.UpgradeResponse(preq, presp)
	if err != nil {
		return nil, fmt.Errorf("%w with %s: %v", ErrHandshake, u.Redacted(), err)
	}
	return conn, nil
}
