package apiclient

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// WebSocket close codes (RFC 6455 §7.4.1) this package sends or reads.
const (
	CloseNormal         = 1000
	CloseGoingAway      = 1001
	CloseProtocolError  = 1002
	CloseUnsupported    = 1003
	CloseNoStatus       = 1005 // never on the wire: the close frame had no code
	CloseInvalidPayload = 1007
	ClosePolicy         = 1008
	CloseTooBig         = 1009
)

// maxControlPayload is the largest payload of a control frame (§5.5).
const maxControlPayload = 125

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

// wsFailure is a violation of RFC 6455 by the peer: the connection must
// be failed with close code (§7.1.7).
type wsFailure struct {
	code int
	msg  string
}

func (e *wsFailure) Error() string { return "websocket: " + e.msg }

// Unwrap makes every failure an ErrProtocol: a peer that sends broken
// frames will send them again.
func (e *wsFailure) Unwrap() error { return ErrProtocol }

func failf(code int, format string, args ...any) error {
	return &wsFailure{code: code, msg: fmt.Sprintf(format, args...)}
}

// wsHeader is a frame's header.
type wsHeader struct {
	fin    bool
	op     byte
	masked bool
	mask   [4]byte
	length uint64
}

// readHeader reads and checks one frame header. No extension is ever
// negotiated, so the RSV bits must be clear.
func readHeader(r *bufio.Reader) (wsHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return wsHeader{}, err
	}
	h := wsHeader{fin: b[0]&0x80 != 0, op: b[0] & 0x0F, masked: b[1]&0x80 != 0, length: uint64(b[1] & 0x7F)}
	if b[0]&0x70 != 0 {
		return h, failf(CloseProtocolError, "reserved bits set (no extension was negotiated)")
	}
	switch h.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !h.fin {
			return h, failf(CloseProtocolError, "fragmented control frame")
		}
		if h.length > maxControlPayload {
			return h, failf(CloseProtocolError, "control frame of more than 125 bytes")
		}
	default:
		return h, failf(CloseProtocolError, "reserved opcode %#x", h.op)
	}
	switch h.length {
	case 126:
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return h, noEOF(err)
		}
		h.length = uint64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err := io.ReadFull(r, b[:8]); err != nil {
			return h, noEOF(err)
		}
		h.length = binary.BigEndian.Uint64(b[:8])
		if h.length>>63 != 0 {
			return h, failf(CloseProtocolError, "64-bit length with the high bit set")
		}
	}
	if h.masked {
		if _, err := io.ReadFull(r, h.mask[:]); err != nil {
			return h, noEOF(err)
		}
	}
	return h, nil
}

// noEOF turns EOF inside a frame into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// maskBytes XORs b with key: masking and unmasking are the same
// operation (§5.3).
func maskBytes(key [4]byte, b []byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// wsReader reads the messages of one connection: it reassembles
// fragmented messages and hands control frames to onControl.
type wsReader struct {
	r   *bufio.Reader
	max int // largest message payload
	// fromClient: the peer is a client, whose frames must be masked
	// (tests use this to play the server); a server's must not be.
	fromClient bool
	// onControl is called with each ping and pong payload, and with the
	// close frame's payload before readMessage returns its *CloseError.
	onControl func(op byte, payload []byte) error
	buf       []byte // the message being read; reused
}

// readMessage returns the next whole text or binary message; the payload
// is valid until the next call. It ends with *CloseError when the peer
// closes, with a *wsFailure when the peer broke the protocol or the
// message exceeds max, and with the read error otherwise.
func (wr *wsReader) readMessage() (op byte, msg []byte, err error) {
	wr.buf = wr.buf[:0]
	op = opContinuation // no message started
	for {
		h, err := readHeader(wr.r)
		if err != nil && op != opContinuation {
			return 0, nil, noEOF(err) // inside a message
		}
		if err != nil {
			return 0, nil, err
		}
		if h.masked != wr.fromClient {
			return 0, nil, failf(CloseProtocolError, "masked=%t frame, want %t", h.masked, wr.fromClient)
		}
		if h.op >= opClose {
			if err := wr.control(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case h.op == opContinuation && op == opContinuation:
			return 0, nil, failf(CloseProtocolError, "continuation frame without a message to continue")
		case h.op != opContinuation && op != opContinuation:
			return 0, nil, failf(CloseProtocolError, "new message inside a fragmented one")
		case h.op != opContinuation:
			op = h.op
		}
		if h.length > uint64(wr.max-len(wr.buf)) {
			return 0, nil, failf(CloseTooBig, "message of more than %d bytes", wr.max)
		}
		if err := wr.readPayload(h, &wr.buf); err != nil {
			return 0, nil, err
		}
		if !h.fin {
			continue
		}
		if op == opText && !utf8.Valid(wr.buf) {
			return 0, nil, failf(CloseInvalidPayload, "text message is not valid UTF-8")
		}
		return op, wr.buf, nil
	}
}

// readPayload appends h's payload to *dst, unmasked.
func (wr *wsReader) readPayload(h wsHeader, dst *[]byte) error {
	start := len(*dst)
	n := int(h.length) // bounded by max or 125 by the callers
	*dst = slices.Grow(*dst, n)[:start+n]
	if _, err := io.ReadFull(wr.r, (*dst)[start:]); err != nil {
		return noEOF(err)
	}
	if h.masked {
		maskBytes(h.mask, (*dst)[start:])
	}
	return nil
}

// control handles one control frame.
func (wr *wsReader) control(h wsHeader) error {
	var p []byte
	if err := wr.readPayload(h, &p); err != nil {
		return err
	}
	if h.op != opClose {
		if wr.onControl == nil {
			return nil
		}
		return wr.onControl(h.op, p)
	}
	ce, err := parseClose(p)
	if err != nil {
		return err
	}
	if wr.onControl != nil {
		if err := wr.onControl(opClose, p); err != nil {
			return err
		}
	}
	return ce
}

// parseClose reads a close frame's payload: empty, or a code and a UTF-8
// reason (§5.5.1).
func parseClose(p []byte) (*CloseError, error) {
	if len(p) == 0 {
		return &CloseError{Code: CloseNoStatus}, nil
	}
	if len(p) == 1 {
		return nil, failf(CloseProtocolError, "close frame with a 1-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return nil, failf(CloseProtocolError, "close code %d is not allowed on the wire", code)
	}
	if !utf8.Valid(p[2:]) {
		return nil, failf(CloseInvalidPayload, "close reason is not valid UTF-8")
	}
	return &CloseError{Code: code, Reason: string(p[2:])}, nil
}

// validCloseCode reports whether code may appear in a close frame (§7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// appendFrame appends one final frame with opcode op and payload p to dst.
// A client masks every frame with a fresh key (§5.3); the server (tests
// only) passes mask nil.
func appendFrame(dst []byte, op byte, p []byte, mask *[4]byte) []byte {
	maskBit := byte(0)
	if mask != nil {
		maskBit = 0x80
	}
	dst = append(dst, 0x80|op)
	switch n := len(p); {
	case n <= 125:
		dst = append(dst, maskBit|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, maskBit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask == nil {
		return append(dst, p...)
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, p...)
	maskBytes(*mask, dst[start:])
	return dst
}

// closePayload is the payload of a close frame with code and reason
// (truncated to fit a control frame).
func closePayload(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return append(p, reason...)
}
