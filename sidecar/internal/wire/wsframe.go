package wire

import (
	"encoding/binary"
	"math/rand/v2"
)

// WebSocket opcodes (RFC 6455 §5.2), as hertz-contrib/websocket numbers
// them (websocket.TextMessage is OpText).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// AppendFrame appends p as one final WebSocket frame with opcode op. A
// server passes mask nil (its frames are never masked); a client passes
// a key (RandomMask) and the payload is masked as RFC 6455 §5.3 asks.
//
// This is the one hand-built frame writer, kept because
// hertz-contrib/websocket writes every message with a syscall of its own:
// a stream writer that sends what one Next returned, or a queue session
// that sends its queued replies, appends their frames here and writes
// them once (BENCHMARKS.md, "wire formats": 8x the events/s of a
// WriteMessage per event). Everything else goes through the library.
func AppendFrame(dst []byte, op byte, p []byte, mask *[4]byte) []byte {
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
	for i := range dst[start:] {
		dst[start+i] ^= mask[i&3]
	}
	return dst
}

// RandomMask returns a fresh masking key. RFC 6455 asks for keys a proxy
// cannot predict from earlier frames, not for a cryptographic source.
func RandomMask() (k [4]byte) {
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return k
}
