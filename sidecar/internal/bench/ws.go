package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// maxWSMessage bounds one message read by the generator.
const maxWSMessage = 16 << 20

// wsWritePool lends the write buffer a connection needs only to answer a
// ping: 10,000 idle connections do not keep 4 KiB each.
var wsWritePool = &sync.Pool{}

// wsConn is a client WebSocket (hertz-contrib/websocket, dialed by
// wire.DialWS). The library hides its read buffer, so the connection
// under it tells when a read is about to wait for the network: that is
// when the events read so far are all there is (buffered false).
type wsConn struct {
	*websocket.Conn
	nc  *waitConn
	buf bytes.Buffer
}

// waitConn counts the reads that go to the network and runs hook before
// each. Only the reader goroutine reads.
type waitConn struct {
	net.Conn
	waits uint64 // reads from the network
	seen  uint64 // waits as of the last next
	hook  func()
}

func (c *waitConn) Read(p []byte) (int, error) {
	c.waits++
	if c.hook != nil {
		c.hook()
	}
	return c.Conn.Read(p)
}

// openWS performs the opening handshake on path. The connection closes
// when ctx ends.
func (e *env) openWS(ctx context.Context, path string) (*wsConn, error) {
	var wc *waitConn
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := e.dial(ctx)
		if err != nil {
			return nil, err
		}
		wc = &waitConn{Conn: c}
		return wc, nil
	}
	conn, err := wire.DialWS(ctx, "ws://"+e.host+path, wire.DialOptions{DialContext: dial, WriteBufferPool: wsWritePool})
	var he *wire.HandshakeError
	switch {
	case errors.As(err, &he):
		return nil, fmt.Errorf("%w: ws %s: %d", ErrStatus, path, he.Status)
	case errors.Is(err, wire.ErrHandshake):
		return nil, fmt.Errorf("%w: ws %s: %v", ErrProtocol, path, err)
	case err != nil:
		return nil, fmt.Errorf("ws %s: %w", path, err)
	}
	conn.SetReadLimit(maxWSMessage)
	closeOnDone(ctx, conn)
	return &wsConn{Conn: conn, nc: wc}, nil
}

// next returns the next data message; the library answers pings on the
// way. fresh says whether it had to wait for the network.
// The payload is valid until the next call: it is read into a buffer the
// connection reuses, where ReadMessage would allocate one per message (a
// million a second under fan-out).
func (w *wsConn) next() (payload []byte, fresh bool, err error) {
	_, r, err := w.NextReader()
	if err == nil {
		w.buf.Reset()
		_, err = w.buf.ReadFrom(r)
	}
	if err != nil {
		return nil, false, fmt.Errorf("ws read: %w", err)
	}
	fresh = w.nc.waits != w.nc.seen
	w.nc.seen = w.nc.waits
	return w.buf.Bytes(), fresh, nil
}

// buffered reports whether the last read left data in the library's
// buffer; the library does not say, so it is taken as true and the
// consumer flushes its counters in onWait instead.
func (w *wsConn) buffered() bool { return true }

// onWait runs f on the reader's goroutine whenever a read is about to
// wait for the network.
func (w *wsConn) onWait(f func()) { w.nc.hook = f }
