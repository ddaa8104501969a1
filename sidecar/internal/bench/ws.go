package bench

import (
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

// wsConn is a client WebSocket dialed by wire.DialWS (hertz-contrib's
// handshake; pongs and close frames go through the library) whose
// messages are read by wire.FrameReader: reading through the library
// cost the generator more than twice the CPU per message.
type wsConn struct {
	*websocket.Conn
	rd *wire.FrameReader
	rc *readCounter // the network connection under rd
}

// openWS performs the opening handshake on path of host. The connection
// closes when ctx ends.
func (e *env) openWS(ctx context.Context, host, path string) (*wsConn, error) {
	var rc *readCounter
	counted := func(ctx context.Context, _, addr string) (net.Conn, error) {
		c, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		rc = newReadCounter(c)
		return rc, nil
	}
	conn, err := wire.DialWS(ctx, "ws://"+host+path, wire.DialOptions{Header: e.header, DialContext: counted, WriteBufferPool: wsWritePool})
	var he *wire.HandshakeError
	switch {
	case errors.As(err, &he):
		return nil, fmt.Errorf("%w: ws %s: %d", ErrStatus, path, he.Status)
	case errors.Is(err, wire.ErrHandshake):
		return nil, fmt.Errorf("%w: ws %s: %v", ErrProtocol, path, err)
	case err != nil:
		return nil, fmt.Errorf("ws %s: %w", path, err)
	}
	rd, err := wire.NewFrameReader(conn, maxWSMessage)
	if err != nil {
		conn.Close()
		return nil, err
	}
	closeOnDone(ctx, conn)
	return &wsConn{Conn: conn, rd: rd, rc: rc}, nil
}

// next returns the next data message, valid until the next call.
func (w *wsConn) next() ([]byte, error) {
	p, err := w.rd.Next()
	if err != nil {
		return nil, fmt.Errorf("ws read: %w", err)
	}
	return p, nil
}

// buffered reports whether frames are already read from the network.
func (w *wsConn) buffered() bool { return w.rd.Buffered() > 0 }
