package wire

import (
	"bufio"
	"errors"
	"io"
	"net"
	"time"

	"github.com/cloudwego/hertz/pkg/network"
)

// bufferedConn hands the library the dialed connection as the hijacked
// connection of a Hertz response (the only way its client side takes
// one), with the bytes read past the handshake's answer still in br.
// The library only reads, writes, closes and sets deadlines; the rest of
// Hertz's network.Conn is served from the same buffer for completeness.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

var _ network.Conn = (*bufferedConn)(nil)

// Hijack is what protocol.Response.Hijack looks for on its body stream.
func (c *bufferedConn) Hijack() (network.Conn, error) { return c, nil }

func (c *bufferedConn) Read(p []byte) (int, error)        { return c.br.Read(p) }
func (c *bufferedConn) Peek(n int) ([]byte, error)        { return c.br.Peek(n) }
func (c *bufferedConn) Skip(n int) error                  { _, err := c.br.Discard(n); return err }
func (c *bufferedConn) Release() error                    { return nil }
func (c *bufferedConn) Len() int                          { return c.br.Buffered() }
func (c *bufferedConn) ReadByte() (byte, error)           { return c.br.ReadByte() }
func (c *bufferedConn) Malloc(n int) ([]byte, error)      { return nil, errNoMalloc }
func (c *bufferedConn) WriteBinary(b []byte) (int, error) { return c.Conn.Write(b) }
func (c *bufferedConn) Flush() error                      { return nil }

func (c *bufferedConn) ReadBinary(n int) ([]byte, error) {
	p := make([]byte, n)
	_, err := io.ReadFull(c.br, p)
	return p, err
}

func (c *bufferedConn) SetReadTimeout(t time.Duration) error {
	return c.Conn.SetReadDeadline(time.Now().Add(t))
}

func (c *bufferedConn) SetWriteTimeout(t time.Duration) error {
	return c.Conn.SetWriteDeadline(time.Now().Add(t))
}

// errNoMalloc: writes go straight to the connection (WriteBinary).
var errNoMalloc = errors.New("wire: no write buffer on a client WebSocket connection")
