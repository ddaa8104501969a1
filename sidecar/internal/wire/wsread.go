package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hertz-contrib/websocket"
)

// ErrFrame is a server frame FrameReader cannot accept.
var ErrFrame = errors.New("wire: bad websocket frame")

// FrameReader reads the messages a server sends on a connection DialWS
// opened, by hand, from the connection's own buffer. It exists for the
// load generator only: reading through the library cost it 2.3 times the
// CPU per message (BenchmarkWSReadLibrary vs BenchmarkWSReadByHand) and
// took a fifth to a half off the WebSocket fan-out it measures
// (BENCHMARKS.md, "wire formats"). The library still dials and writes:
// pongs and close frames go through its connection.
type FrameReader struct {
	conn *websocket.Conn
	br   *bufio.Reader
	max  uint64
	buf  []byte
	hdr  [10]byte
}

// NewFrameReader reads conn's messages up to max bytes each; conn must
// come from DialWS and not be read through the library.
func NewFrameReader(conn *websocket.Conn, max int) (*FrameReader, error) {
	bc, ok := conn.NetConn().(*bufferedConn)
	if !ok {
		return nil, errors.New("wire: FrameReader needs a connection DialWS opened")
	}
	return &FrameReader{conn: conn, br: bc.br, max: uint64(max)}, nil
}

// Buffered reports how many bytes are read and not yet decoded: when
// none, the next message needs the network.
func (r *FrameReader) Buffered() int { return r.br.Buffered() }

// Next returns the next data message (text or binary), valid until the
// next call. Pings are answered on the way; a close frame is echoed and
// ends reading with io.EOF.
func (r *FrameReader) Next() (payload []byte, err error) {
	r.buf = r.buf[:0]
	for range 1 << 16 {
		fin, op, p, err := r.frame()
		if err != nil {
			return nil, err
		}
		switch op {
		case websocket.PingMessage:
			if err := r.conn.WriteControl(websocket.PongMessage, p, time.Now().Add(5*time.Second)); err != nil {
				return nil, err
			}
			continue
		case websocket.PongMessage:
			continue
		case websocket.CloseMessage:
			if len(p) > 2 {
				p = p[:2]
			}
			_ = r.conn.WriteControl(websocket.CloseMessage, p, time.Now().Add(time.Second))
			return nil, io.EOF
		case 0, websocket.TextMessage, websocket.BinaryMessage:
		default:
			return nil, fmt.Errorf("%w: opcode %d", ErrFrame, op)
		}
		if fin {
			return r.buf, nil
		}
	}
	return nil, fmt.Errorf("%w: a message of too many fragments", ErrFrame)
}

// frame reads one frame: a data frame's payload is appended to r.buf, a
// control frame's returned apart (it may come inside a message).
func (r *FrameReader) frame() (fin bool, op int, payload []byte, err error) {
	h := r.hdr[:]
	if _, err := io.ReadFull(r.br, h[:2]); err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, int(h[0]&0x0f)
	if h[1]&0x80 != 0 {
		return false, 0, nil, fmt.Errorf("%w: masked server frame", ErrFrame)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r.br, h[2:4]); err != nil {
			return false, 0, nil, noEOF(err)
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(r.br, h[2:10]); err != nil {
			return false, 0, nil, noEOF(err)
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if n > r.max || uint64(len(r.buf))+n > r.max {
		return false, 0, nil, fmt.Errorf("%w: a message over %d bytes", ErrFrame, r.max)
	}
	if op >= websocket.CloseMessage {
		p := make([]byte, n)
		if _, err := io.ReadFull(r.br, p); err != nil {
			return false, 0, nil, noEOF(err)
		}
		return fin, op, p, nil
	}
	start := len(r.buf)
	r.buf = slices.Grow(r.buf, int(n))[:start+int(n)]
	if _, err := io.ReadFull(r.br, r.buf[start:]); err != nil {
		return false, 0, nil, noEOF(err)
	}
	return fin, op, nil, nil
}

// noEOF: an end inside a frame is an unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
