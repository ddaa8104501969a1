package streamhttp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// masked is a client frame: fin, op and a masked payload.
func masked(fin bool, op byte, p []byte) []byte {
	m := wire.RandomMask()
	b := wire.AppendFrame(nil, op, p, &m)
	if !fin {
		b[0] &^= 0x80
	}
	return b
}

// What a client sends is read as RFC 6455 says, and what it must not send
// ends the session with the right close reason instead of a panic or a
// hang: unmasked or reserved-bit frames and stray continuations are
// protocol errors (1002), messages over the limit are refused (1009)
// before their payload is read.
func TestClientFrames(t *testing.T) {
	t.Parallel()
	join := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	unmasked := wire.AppendFrame(nil, wire.OpText, []byte("x"), nil)
	rsv := masked(true, wire.OpText, []byte("x"))
	rsv[0] |= 0x40
	for _, tc := range []struct {
		name    string
		in      []byte
		wantOp  byte // of the last frame read
		want    string
		wantErr error
	}{
		{"text", masked(true, wire.OpText, []byte(`{"resume":1}`)), wire.OpText, `{"resume":1}`, nil},
		{"fragments", join(masked(false, wire.OpText, []byte("ab")), masked(true, wire.OpContinuation, []byte("cd"))), wire.OpText, "abcd", nil},
		{"ping between fragments", join(masked(false, wire.OpText, []byte("ab")), masked(true, wire.OpPing, []byte("p")), masked(true, wire.OpContinuation, []byte("cd"))), wire.OpText, "abcd", nil},
		{"16-bit length", masked(true, wire.OpBinary, bytes.Repeat([]byte("y"), 300)), wire.OpBinary, string(bytes.Repeat([]byte("y"), 300)), nil},
		{"close", masked(true, wire.OpClose, []byte{0x03, 0xe8}), wire.OpClose, "\x03\xe8", nil},
		{"unmasked", unmasked, 0, "", errProtocol},
		{"reserved bits", rsv, 0, "", errProtocol},
		{"stray continuation", masked(true, wire.OpContinuation, []byte("x")), 0, "", errProtocol},
		{"text inside a message", join(masked(false, wire.OpText, []byte("a")), masked(true, wire.OpText, []byte("b"))), 0, "", errProtocol},
		{"fragmented ping", masked(false, wire.OpPing, nil), 0, "", errProtocol},
		{"long ping", masked(true, wire.OpPing, bytes.Repeat([]byte("p"), 126)), 0, "", errProtocol},
		{"unknown opcode", masked(true, 0x3, nil), 0, "", errProtocol},
		{"too big", masked(true, wire.OpText, bytes.Repeat([]byte("z"), 513)), 0, "", errTooBig},
		{"too big in fragments", join(masked(false, wire.OpText, bytes.Repeat([]byte("z"), 300)), masked(true, wire.OpContinuation, bytes.Repeat([]byte("z"), 300))), 0, "", errTooBig},
		// Only the header: refused before any payload is waited for.
		{"64-bit length over the limit", masked(true, wire.OpText, make([]byte, 70000))[:14], 0, "", errTooBig},
		{"cut short", masked(true, wire.OpText, []byte("hello"))[:5], 0, "", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReader(bytes.NewReader(tc.in))
			var m clientMessage
			var op byte
			var p []byte
			var err error
			for range 8 {
				if op, p, err = nextFrame(br, &m, 512); err != nil || (op != 0 && op != wire.OpPing) {
					break
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || op != tc.wantOp || string(p) != tc.want {
				t.Fatalf("op %d %q %v, want op %d %q", op, p, err, tc.wantOp, tc.want)
			}
		})
	}
}
