package streamhttp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// Why the stream socket reads client frames itself rather than through
// hertz-contrib/websocket: the library reads only from the connection it
// was made with (Hertz's, whose 4 KiB input buffer then stays) into a
// bufio.Reader of its own that lives as long as the connection, and only
// from a goroutine parked in ReadMessage. A stream client sends a frame a
// heartbeat at most (pongs, a rare resume), so the session reads in
// bursts from a pooled reader, started when the socket is readable.

// Errors of the client frame reader.
var (
	// errProtocol is a frame RFC 6455 forbids from a client (close 1002).
	errProtocol = errors.New("ws: protocol error")
	// errTooBig is a message over WSOptions.MaxFrame (close 1009).
	errTooBig = errors.New("ws: message too big")
)

// maxControl is the largest control frame payload (RFC 6455 §5.5).
const maxControl = 125

// readerPool lends the buffered reader of a read burst: an idle session
// holds none.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

// frameHead is a frame's header as a client sends it: always masked.
type frameHead struct {
	fin  bool
	op   byte
	n    uint64
	mask [4]byte
}

// readHead reads one frame header and checks what a server must refuse.
func readHead(br *bufio.Reader) (frameHead, error) {
	var b [8]byte
	if _, err := io.ReadFull(br, b[:2]); err != nil {
		return frameHead{}, err
	}
	h := frameHead{fin: b[0]&0x80 != 0, op: b[0] & 0x0f, n: uint64(b[1] & 0x7f)}
	switch {
	case b[0]&0x70 != 0:
		return h, fmt.Errorf("%w: reserved bits set (no extension was agreed)", errProtocol)
	case b[1]&0x80 == 0:
		return h, fmt.Errorf("%w: unmasked client frame", errProtocol)
	}
	switch h.n {
	case 126:
		if _, err := io.ReadFull(br, b[:2]); err != nil {
			return h, err
		}
		h.n = uint64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err := io.ReadFull(br, b[:8]); err != nil {
			return h, err
		}
		h.n = binary.BigEndian.Uint64(b[:8])
	}
	if h.op >= wire.OpClose && (h.n > maxControl || !h.fin) {
		return h, fmt.Errorf("%w: control frame fragmented or over %d bytes", errProtocol, maxControl)
	}
	if _, err := io.ReadFull(br, h.mask[:]); err != nil {
		return h, err
	}
	return h, nil
}

// clientMessage is a message being read: data frames join until FIN.
type clientMessage struct {
	op  byte // wire.OpText or wire.OpBinary; 0 while none started
	buf []byte
}

// nextFrame reads one frame: a control frame is returned alone (op is
// its opcode), a data frame is appended to m and returns op 0 until the
// message's last frame, which returns the message's opcode. Messages
// over max bytes are refused with errTooBig before their payload is read.
func nextFrame(br *bufio.Reader, m *clientMessage, max int64) (op byte, payload []byte, err error) {
	h, err := readHead(br)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case h.op >= wire.OpClose:
		if h.op > wire.OpPong {
			return 0, nil, fmt.Errorf("%w: opcode %d", errProtocol, h.op)
		}
		var p [maxControl]byte
		if err := readMasked(br, p[:h.n], h.mask); err != nil {
			return 0, nil, err
		}
		return h.op, append([]byte(nil), p[:h.n]...), nil
	case h.op == wire.OpContinuation && m.op == 0, h.op != wire.OpContinuation && m.op != 0:
		return 0, nil, fmt.Errorf("%w: continuation out of order", errProtocol)
	case h.op != wire.OpContinuation && h.op != wire.OpText && h.op != wire.OpBinary:
		return 0, nil, fmt.Errorf("%w: opcode %d", errProtocol, h.op)
	}
	if h.n > uint64(max)-uint64(len(m.buf)) || uint64(len(m.buf)) > uint64(max) {
		return 0, nil, errTooBig
	}
	if h.op != wire.OpContinuation {
		m.op = h.op
	}
	start := len(m.buf)
	m.buf = append(m.buf, make([]byte, h.n)...)
	if err := readMasked(br, m.buf[start:], h.mask); err != nil {
		return 0, nil, err
	}
	if !h.fin {
		return 0, nil, nil
	}
	op, payload = m.op, m.buf
	*m = clientMessage{}
	return op, payload, nil
}

// readMasked fills p from br and unmasks it.
func readMasked(br *bufio.Reader, p []byte, mask [4]byte) error {
	if _, err := io.ReadFull(br, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for i := range p {
		p[i] ^= mask[i&3]
	}
	return nil
}
