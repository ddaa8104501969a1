package apiclient

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// srvFrame is an unmasked server frame; fin=false leaves it open.
func srvFrame(fin bool, op byte, p string) []byte {
	b := appendFrame(nil, op, []byte(p), nil)
	if !fin {
		b[0] &^= 0x80
	}
	return b
}

// header is a raw frame header with a 64-bit length field and no payload.
func header64(op byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{0x80 | op, 127}, n)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// seen records the control frames a reader reported.
type seen []string

func (s *seen) control(op byte, p []byte) error {
	*s = append(*s, fmt.Sprintf("%#x:%s", op, p))
	return nil
}

func TestReadMessage(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 70000)
	masked := appendFrame(nil, opText, []byte("hi"), &[4]byte{1, 2, 3, 4})
	tests := []struct {
		name    string
		in      []byte
		max     int
		op      byte
		want    string   // the message, when wantErr is nil
		control []string // control frames reported, in order
		failure int      // expected *wsFailure code
		close   *CloseError
		wantErr error // expected error (errors.Is), when no failure/close
	}{
		{name: "7-bit length", in: srvFrame(true, opText, `{"seq":1}`), op: opText, want: `{"seq":1}`},
		{name: "empty text", in: srvFrame(true, opText, ""), op: opText, want: ""},
		{name: "16-bit length 126", in: srvFrame(true, opText, big[:126]), op: opText, want: big[:126]},
		{name: "16-bit length 65535", in: srvFrame(true, opText, big[:65535]), op: opText, want: big[:65535]},
		{name: "64-bit length", in: srvFrame(true, opText, big), op: opText, want: big},
		{name: "exactly max", in: srvFrame(true, opText, "12345"), max: 5, op: opText, want: "12345"},
		{name: "binary is reported as binary", in: srvFrame(true, opBinary, "\x00\xff"), op: opBinary, want: "\x00\xff"},
		{name: "fragmented", in: cat(srvFrame(false, opText, "he"), srvFrame(false, opContinuation, "l"), srvFrame(true, opContinuation, "lo")),
			op: opText, want: "hello"},
		{name: "control frames inside a fragmented message",
			in: cat(srvFrame(false, opText, "a"), srvFrame(true, opPing, "p1"), srvFrame(false, opContinuation, "b"),
				srvFrame(true, opPong, "p2"), srvFrame(true, opContinuation, "c")),
			op: opText, want: "abc", control: []string{"0x9:p1", "0xa:p2"}},
		{name: "UTF-8 rune split over fragments", in: cat(srvFrame(false, opText, "é"[:1]), srvFrame(true, opContinuation, "é"[1:])), op: opText, want: "é"},
		{name: "ping before the message", in: cat(srvFrame(true, opPing, ""), srvFrame(true, opText, "x")), op: opText, want: "x", control: []string{"0x9:"}},

		{name: "masked server frame", in: masked, failure: CloseProtocolError},
		{name: "reserved data opcode", in: srvFrame(true, 0x3, "x"), failure: CloseProtocolError},
		{name: "reserved control opcode", in: srvFrame(true, 0xB, "x"), failure: CloseProtocolError},
		{name: "RSV1 set", in: func() []byte { b := srvFrame(true, opText, "x"); b[0] |= 0x40; return b }(), failure: CloseProtocolError},
		{name: "continuation without a start", in: srvFrame(true, opContinuation, "x"), failure: CloseProtocolError},
		{name: "new message inside a fragmented one", in: cat(srvFrame(false, opText, "a"), srvFrame(true, opText, "b")), failure: CloseProtocolError},
		{name: "fragmented ping", in: srvFrame(false, opPing, "x"), failure: CloseProtocolError},
		{name: "ping of 126 bytes", in: srvFrame(true, opPing, big[:126]), failure: CloseProtocolError},
		{name: "64-bit length with the high bit", in: header64(opText, 1<<63), failure: CloseProtocolError},
		{name: "oversize frame fails before its payload", in: header64(opText, 1<<40), max: 1 << 20, failure: CloseTooBig},
		{name: "oversize by one", in: srvFrame(true, opText, "123456"), max: 5, failure: CloseTooBig},
		{name: "oversize over fragments", in: cat(srvFrame(false, opText, "123"), srvFrame(true, opContinuation, "456")), max: 5, failure: CloseTooBig},
		{name: "invalid UTF-8 text", in: srvFrame(true, opText, "a\xffb"), failure: CloseInvalidPayload},

		{name: "close with code and reason", in: srvFrame(true, opClose, "\x03\xe8stream ended"),
			close: &CloseError{Code: 1000, Reason: "stream ended"}, control: []string{"0x8:\x03\xe8stream ended"}},
		{name: "close without a code", in: srvFrame(true, opClose, ""), close: &CloseError{Code: CloseNoStatus}, control: []string{"0x8:"}},
		{name: "close 4000 (application code)", in: srvFrame(true, opClose, "\x0f\xa0"), close: &CloseError{Code: 4000}, control: []string{"0x8:\x0f\xa0"}},
		{name: "close with 1 byte", in: srvFrame(true, opClose, "\x03"), failure: CloseProtocolError},
		{name: "close code 1005 on the wire", in: srvFrame(true, opClose, "\x03\xed"), failure: CloseProtocolError},
		{name: "close reason not UTF-8", in: srvFrame(true, opClose, "\x03\xe8\xff"), failure: CloseInvalidPayload},

		{name: "nothing: EOF", in: nil, wantErr: io.EOF},
		{name: "truncated header", in: []byte{0x81}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated length", in: []byte{0x81, 126, 0}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated payload", in: srvFrame(true, opText, "hello")[:4], wantErr: io.ErrUnexpectedEOF},
		{name: "EOF inside a fragmented message", in: srvFrame(false, opText, "he"), wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			max := tt.max
			if max == 0 {
				max = 1 << 20
			}
			wr := wsReader{r: bufio.NewReader(bytes.NewReader(tt.in)), max: max, onControl: got.control}
			op, msg, err := wr.readMessage()
			var (
				fail *wsFailure
				ce   *CloseError
			)
			switch {
			case tt.failure != 0:
				if !errors.As(err, &fail) || fail.code != tt.failure || !errors.Is(err, ErrProtocol) {
					t.Fatalf("err %v, want a protocol failure with close code %d", err, tt.failure)
				}
			case tt.close != nil:
				if !errors.As(err, &ce) || *ce != *tt.close {
					t.Fatalf("err %v, want %v", err, tt.close)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
			case err != nil || op != tt.op || string(msg) != tt.want:
				t.Fatalf("got op %#x %d bytes, err %v; want op %#x %d bytes", op, len(msg), err, tt.op, len(tt.want))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.control) {
				t.Fatalf("control frames %q, want %q", got, tt.control)
			}
		})
	}
}

// A reader returns one message per call, keeping the frames after it.
func TestReadMessageSequence(t *testing.T) {
	t.Parallel()
	in := cat(srvFrame(true, opText, "one"), srvFrame(false, opText, "t"), srvFrame(true, opContinuation, "wo"), srvFrame(true, opText, "three"))
	wr := wsReader{r: bufio.NewReader(bytes.NewReader(in)), max: 16}
	var got []string
	for range 4 {
		_, msg, err := wr.readMessage()
		if err != nil {
			got = append(got, err.Error())
			break
		}
		got = append(got, string(msg))
	}
	if want := "one|two|three|EOF"; strings.Join(got, "|") != want {
		t.Fatalf("messages %q, want %s", got, want)
	}
}

func TestAppendFrameMasksAndEncodesLength(t *testing.T) {
	t.Parallel()
	key := [4]byte{0xa1, 0x00, 0x7f, 0xff}
	for _, tt := range []struct {
		n          int
		lenBytes   []byte // the length field after the first byte
		headerSize int
	}{
		{0, []byte{0x80}, 2},
		{125, []byte{0x80 | 125}, 2},
		{126, []byte{0x80 | 126, 0, 126}, 4},
		{65535, []byte{0x80 | 126, 0xff, 0xff}, 4},
		{65536, []byte{0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0}, 10},
	} {
		p := bytes.Repeat([]byte("ab"), tt.n/2+1)[:tt.n]
		b := appendFrame([]byte("keep"), opText, p, &key)
		if string(b[:4]) != "keep" {
			t.Fatalf("%d: the prefix was overwritten", tt.n)
		}
		b = b[4:]
		if b[0] != 0x81 || !bytes.Equal(b[1:1+len(tt.lenBytes)], tt.lenBytes) {
			t.Fatalf("%d: header % x, want 81 % x", tt.n, b[:tt.headerSize], tt.lenBytes)
		}
		if !bytes.Equal(b[tt.headerSize:tt.headerSize+4], key[:]) {
			t.Fatalf("%d: mask key % x, want % x", tt.n, b[tt.headerSize:tt.headerSize+4], key)
		}
		wire := b[tt.headerSize+4:]
		for i := range wire {
			if wire[i] != p[i]^key[i%4] {
				t.Fatalf("%d: byte %d is %#x, want payload^key %#x", tt.n, i, wire[i], p[i]^key[i%4])
			}
		}
		// A server-side reader unmasks it back.
		wr := wsReader{r: bufio.NewReader(bytes.NewReader(b)), max: 1 << 20, fromClient: true}
		op, msg, err := wr.readMessage()
		if err != nil || op != opText || !bytes.Equal(msg, p) {
			t.Fatalf("%d: read back op %#x err %v, equal %t", tt.n, op, err, bytes.Equal(msg, p))
		}
	}
	// A server's frame is not masked, and a server-side reader refuses it.
	b := appendFrame(nil, opText, []byte("x"), nil)
	wr := wsReader{r: bufio.NewReader(bytes.NewReader(b)), max: 8, fromClient: true}
	if _, _, err := wr.readMessage(); !errors.Is(err, ErrProtocol) || b[1]&0x80 != 0 {
		t.Fatalf("unmasked client frame: err %v, frame % x", err, b)
	}
}

func TestClosePayload(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"", "bye", strings.Repeat("é", 100)} {
		p := closePayload(CloseTooBig, reason)
		ce, err := parseClose(p)
		if err != nil || ce.Code != CloseTooBig || len(p) > maxControlPayload || !utf8.Valid(p[2:]) || !strings.HasPrefix(reason, ce.Reason) {
			t.Fatalf("%q: payload %d bytes, parsed %v, %v", reason, len(p), ce, err)
		}
	}
}

// FuzzWSReader feeds arbitrary bytes to the frame reader: it must never
// panic or hand out more than its limit, text must be UTF-8, control
// payloads small, errors of the known kinds, and every message it returns
// must survive a re-encode.
func FuzzWSReader(f *testing.F) {
	for _, seed := range [][]byte{
		srvFrame(true, opText, `{"seq":1}`),
		cat(srvFrame(false, opText, "a"), srvFrame(true, opPing, "p"), srvFrame(true, opContinuation, "b")),
		srvFrame(true, opClose, "\x03\xe8bye"),
		srvFrame(true, opBinary, "\x00"),
		header64(opText, 1<<40),
		appendFrame(nil, opText, []byte("masked"), &[4]byte{9, 8, 7, 6}),
		srvFrame(true, opText, strings.Repeat("z", 300)),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	const max = 1024
	f.Fuzz(func(t *testing.T, in []byte, fromClient bool) {
		check := func(op byte, p []byte) error {
			if len(p) > maxControlPayload || op < opClose {
				t.Fatalf("control op %#x with %d bytes", op, len(p))
			}
			return nil
		}
		wr := wsReader{r: bufio.NewReader(bytes.NewReader(in)), max: max, fromClient: fromClient, onControl: check}
		for range len(in) + 1 { // each message takes at least 2 bytes
			op, msg, err := wr.readMessage()
			if err != nil {
				var (
					fail *wsFailure
					ce   *CloseError
				)
				if !errors.As(err, &fail) && !errors.As(err, &ce) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error kind %T: %v", err, err)
				}
				return
			}
			if len(msg) > max || (op != opText && op != opBinary) || (op == opText && !utf8.Valid(msg)) {
				t.Fatalf("message op %#x of %d bytes", op, len(msg))
			}
			var mask *[4]byte
			if fromClient {
				mask = &[4]byte{1, 2, 3, 4}
			}
			again := wsReader{r: bufio.NewReader(bytes.NewReader(appendFrame(nil, op, msg, mask))), max: max, fromClient: fromClient}
			op2, msg2, err := again.readMessage()
			if err != nil || op2 != op || !bytes.Equal(msg, msg2) {
				t.Fatalf("re-encoded message: op %#x err %v", op2, err)
			}
		}
		t.Fatal("the reader did not consume its input")
	})
}
