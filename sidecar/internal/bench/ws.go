package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// maxWSMessage bounds one message read by the generator.
const maxWSMessage = 16 << 20

// wsConn is a minimal WebSocket client: it reads unmasked server frames,
// answers pings, and writes masked frames.
type wsConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
	hdr [14]byte

	wmu  sync.Mutex
	wbuf []byte
}

// openWS performs the opening handshake on path. The connection closes
// when ctx ends.
func (e *env) openWS(ctx context.Context, path string) (*wsConn, error) {
	c, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + e.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	stop := closeOnDone(ctx, c)
	fail := func(err error) (*wsConn, error) { stop(); c.Close(); return nil, err }
	if _, err := c.Write([]byte(req)); err != nil {
		return fail(fmt.Errorf("ws handshake: %w", err))
	}
	br := bufio.NewReaderSize(c, 4<<10)
	status, h, err := readHead(br)
	if err != nil {
		return fail(fmt.Errorf("ws %s: %w", path, err))
	}
	if status != http.StatusSwitchingProtocols {
		return fail(fmt.Errorf("%w: ws %s: %d", ErrStatus, path, status))
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if h.accept != base64.StdEncoding.EncodeToString(sum[:]) {
		return fail(fmt.Errorf("%w: ws %s: bad Sec-WebSocket-Accept", ErrProtocol, path))
	}
	return &wsConn{c: c, br: br}, nil
}

// next returns the next data message (text or binary); control frames are
// handled on the way. The payload is valid until the next call.
func (w *wsConn) next() (op byte, payload []byte, err error) {
	w.buf = w.buf[:0]
	msgOp := byte(0)
	for range 1 << 16 {
		fin, fop, p, err := w.frame()
		if err != nil {
			return 0, nil, err
		}
		switch fop {
		case opPing:
			if err := w.write(opPong, p); err != nil {
				return 0, nil, err
			}
			continue
		case opPong:
			continue
		case opClose:
			_ = w.write(opClose, p)
			return opClose, p, io.EOF
		case opText, opBin:
			msgOp = fop
		case opCont:
		default:
			return 0, nil, fmt.Errorf("%w: ws opcode %d", ErrProtocol, fop)
		}
		if fin {
			return msgOp, w.buf, nil
		}
	}
	return 0, nil, fmt.Errorf("%w: ws message of too many fragments", ErrProtocol)
}

// frame reads one frame; data frames are appended to w.buf, control
// frame payloads are returned apart (they may interleave a message).
func (w *wsConn) frame() (fin bool, op byte, payload []byte, err error) {
	if _, err := io.ReadFull(w.br, w.hdr[:2]); err != nil {
		return false, 0, nil, fmt.Errorf("ws read: %w", err)
	}
	fin, op = w.hdr[0]&0x80 != 0, w.hdr[0]&0x0f
	n := uint64(w.hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(w.br, w.hdr[2:4]); err != nil {
			return false, 0, nil, fmt.Errorf("ws read: %w", err)
		}
		n = uint64(binary.BigEndian.Uint16(w.hdr[2:4]))
	case 127:
		if _, err := io.ReadFull(w.br, w.hdr[2:10]); err != nil {
			return false, 0, nil, fmt.Errorf("ws read: %w", err)
		}
		n = binary.BigEndian.Uint64(w.hdr[2:10])
	}
	if w.hdr[1]&0x80 != 0 {
		return false, 0, nil, fmt.Errorf("%w: masked server frame", ErrProtocol)
	}
	if n > maxWSMessage || uint64(len(w.buf))+n > maxWSMessage {
		return false, 0, nil, fmt.Errorf("%w: ws message over %d bytes", ErrProtocol, maxWSMessage)
	}
	if op >= opClose {
		p := make([]byte, n)
		if _, err := io.ReadFull(w.br, p); err != nil {
			return false, 0, nil, fmt.Errorf("ws read: %w", err)
		}
		return fin, op, p, nil
	}
	start := len(w.buf)
	w.buf = slices.Grow(w.buf, int(n))[:start+int(n)]
	if _, err := io.ReadFull(w.br, w.buf[start:]); err != nil {
		return false, 0, nil, fmt.Errorf("ws read: %w", err)
	}
	return fin, op, nil, nil
}

// write sends one final masked frame.
func (w *wsConn) write(op byte, p []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	b := append(w.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range p {
		b[start+i] ^= mask[i&3]
	}
	w.wbuf = b
	if _, err := w.c.Write(b); err != nil {
		return fmt.Errorf("ws write: %w", err)
	}
	return nil
}

// buffered reports whether frames are already read from the network.
func (w *wsConn) buffered() bool { return w.br.Buffered() > 0 }

func (w *wsConn) Close() error { return w.c.Close() }
