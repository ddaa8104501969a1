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
	// The frame being read, kept across a reader error so that Next,
	// called again, resumes it (a non-blocking reader's "nothing yet"):
	// its header is consumed only whole, its payload as it comes.
	inMsg   bool   // buf holds fragments of an unfinished message
	inFrame bool   // a frame's header is read, its payload is not whole
	fin     bool   // of the frame being read
	op      int    // of the frame being read
	dst     []byte // where the payload goes: its own for a control frame, else buf's end
	got     int    // payload bytes read into dst
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
// ends reading with io.EOF. After a reader error other than the end,
// Next may be called again: it resumes the message where it stopped.
func (r *FrameReader) Next() (payload []byte, err error) {
	if !r.inMsg {
		r.buf = r.buf[:0]
		r.inMsg = true
	}
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
			r.inMsg = false
			return r.buf, nil
		}
	}
	return nil, fmt.Errorf("%w: a message of too many fragments", ErrFrame)
}

// frame reads one frame: a data frame's payload is appended to r.buf, a
// control frame's returned apart (it may come inside a message).
func (r *FrameReader) frame() (fin bool, op int, payload []byte, err error) {
	if !r.inFrame {
		if err := r.header(); err != nil {
			return false, 0, nil, err
		}
	}
	for r.got < len(r.dst) {
		n, err := r.br.Read(r.dst[r.got:])
		r.got += n
		if n == 0 && err == nil {
			err = io.ErrNoProgress
		}
		if err != nil && r.got < len(r.dst) {
			return false, 0, nil, noEOF(err)
		}
	}
	r.inFrame = false
	if r.op >= websocket.CloseMessage {
		return r.fin, r.op, r.dst, nil
	}
	return r.fin, r.op, nil, nil
}

// header reads a frame header, consuming it only once whole, and
// prepares r.dst for its payload.
func (r *FrameReader) header() error {
	h, err := r.br.Peek(2)
	if err != nil {
		if len(h) > 0 {
			err = noEOF(err)
		}
		return err
	}
	size := 2
	switch h[1] & 0x7f {
	case 126:
		size = 4
	case 127:
		size = 10
	}
	if h, err = r.br.Peek(size); err != nil {
		return noEOF(err)
	}
	fin, op := h[0]&0x80 != 0, int(h[0]&0x0f)
	if h[1]&0x80 != 0 {
		return fmt.Errorf("%w: masked server frame", ErrFrame)
	}
	n := uint64(h[1] & 0x7f)
	switch size {
	case 4:
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 10:
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if n > r.max || uint64(len(r.buf))+n > r.max {
		return fmt.Errorf("%w: a message over %d bytes", ErrFrame, r.max)
	}
	_, _ = r.br.Discard(size)
	r.inFrame, r.fin, r.op, r.got = true, fin, op, 0
	if op >= websocket.CloseMessage {
		r.dst = make([]byte, n)
		return nil
	}
	start := len(r.buf)
	r.buf = slices.Grow(r.buf, int(n))[:start+int(n)]
	r.dst = r.buf[start:]
	return nil
}

// noEOF: an end inside a frame is an unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
