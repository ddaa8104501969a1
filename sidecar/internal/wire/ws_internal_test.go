package wire

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"
)

// loopConn serves the same frames forever and swallows writes.
type loopConn struct {
	net.Conn
	frames []byte
	off    int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := copy(p, c.frames[c.off:])
	c.off = (c.off + n) % len(c.frames)
	return n, nil
}
func (c *loopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *loopConn) Close() error                     { return nil }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }

// fanoutFrames is 64 server frames of 150-byte envelopes.
func fanoutFrames() []byte {
	var b []byte
	for range 64 {
		b = AppendFrame(b, OpText, bytes.Repeat([]byte("e"), 150), nil)
	}
	return b
}

// libraryClient makes the library's client connection over c, as DialWS
// does after a good handshake.
func libraryClient(tb testing.TB, c net.Conn) *websocket.Conn {
	tb.Helper()
	up := &websocket.ClientUpgrader{}
	preq := &protocol.Request{}
	up.PrepareRequest(preq)
	sum := sha1.Sum([]byte(string(preq.Header.Peek("Sec-WebSocket-Key")) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	presp := &protocol.Response{}
	presp.SetStatusCode(101)
	presp.Header.Set("Upgrade", "websocket")
	presp.Header.Set("Connection", "Upgrade")
	presp.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
	presp.SetBodyStream(&bufferedConn{Conn: c, br: bufio.NewReaderSize(c, 4096)}, -1)
	conn, err := up.UpgradeResponse(preq, presp)
	if err != nil {
		tb.Fatal(err)
	}
	return conn
}

// BenchmarkWSReadLibrary reads fan-out messages with the library's client
// connection (NextReader into a reused buffer, as the load generator does).
func BenchmarkWSReadLibrary(b *testing.B) {
	conn := libraryClient(b, &loopConn{frames: fanoutFrames()})
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		_, r, err := conn.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil || buf.Len() != 150 {
			b.Fatal(err, buf.Len())
		}
	}
}

// onceConn serves in once, then EOF; writes are swallowed.
type onceConn struct {
	loopConn
	r *bytes.Reader
}

func (c *onceConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// FuzzWSClientRead feeds whatever a server may send after the handshake
// to a client connection made as DialWS makes it: reading ends (EOF or
// an error), never panics, and no message exceeds the read limit.
func FuzzWSClientRead(f *testing.F) {
	f.Add(AppendFrame(nil, OpText, []byte(`{"seq":1}`), nil))
	f.Add(append(AppendFrame(nil, OpPing, []byte("hb"), nil), AppendFrame(nil, OpClose, []byte{3, 232, 'x'}, nil)...))
	f.Add([]byte{0x01, 0x02, 'a', 'b', 0x80, 0x01, 'c'}) // fragmented
	f.Add([]byte{0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(AppendFrame(nil, OpText, bytes.Repeat([]byte("x"), 300), &[4]byte{1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := libraryClient(t, &onceConn{r: bytes.NewReader(in)})
		conn.SetReadLimit(256)
		for range len(in) + 1 {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if len(msg) > 256 {
				t.Fatalf("a %d-byte message passed the 256-byte limit", len(msg))
			}
		}
		t.Fatalf("%d bytes read as more than %d messages", len(in), len(in)+1)
	})
}

// BenchmarkWSReadByHand reads them with FrameReader, the load
// generator's reader.
func BenchmarkWSReadByHand(b *testing.B) {
	rd, err := NewFrameReader(libraryClient(b, &loopConn{frames: fanoutFrames()}), 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p, err := rd.Next(); err != nil || len(p) != 150 {
			b.Fatal(err, len(p))
		}
	}
}

// recConn serves in once and records what is written.
type recConn struct {
	onceConn
	wrote bytes.Buffer
}

func (c *recConn) Write(p []byte) (int, error) { return c.wrote.Write(p) }

// FrameReader reassembles fragments, answers a ping inside a message with
// a pong through the library (masked), echoes a close and then ends.
func TestFrameReader(t *testing.T) {
	t.Parallel()
	frag := AppendFrame(nil, OpText, []byte("he"), nil)
	frag[0] &^= 0x80 // not final
	in := AppendFrame(nil, OpText, []byte("one"), nil)
	in = append(in, frag...)
	in = AppendFrame(in, OpPing, []byte("p"), nil)
	in = AppendFrame(in, 0x0, []byte("llo"), nil) // final continuation
	in = AppendFrame(in, OpClose, []byte{3, 232, 'b', 'y', 'e'}, nil)
	c := &recConn{onceConn: onceConn{r: bytes.NewReader(in)}}
	rd, err := NewFrameReader(libraryClient(t, c), 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "hello"} {
		if p, err := rd.Next(); err != nil || string(p) != want {
			t.Fatalf("got %q %v, want %q", p, err, want)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after close: %v, want io.EOF", err)
	}
	// The client wrote a masked pong "p" and a masked close 1000.
	w := c.wrote.Bytes()
	if len(w) != 2+4+1+2+4+2 || w[0] != 0x8a || w[1] != 0x81 || w[7] != 0x88 || w[8] != 0x82 {
		t.Fatalf("client wrote % x", w)
	}
	big := AppendFrame(nil, OpText, bytes.Repeat([]byte("x"), 65), nil)
	rd, _ = NewFrameReader(libraryClient(t, &onceConn{r: bytes.NewReader(big)}), 64)
	if _, err := rd.Next(); !errors.Is(err, ErrFrame) {
		t.Fatalf("a 65-byte message with a limit of 64: %v", err)
	}
}

// FuzzFrameReader: any bytes a server sends end reading without a panic,
// every message within the limit.
func FuzzFrameReader(f *testing.F) {
	f.Add(AppendFrame(nil, OpText, []byte(`{"seq":1}`), nil))
	f.Add([]byte{0x01, 0x02, 'a', 'b', 0x89, 0x00, 0x80, 0x01, 'c'})
	f.Add([]byte{0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		rd, err := NewFrameReader(libraryClient(t, &onceConn{r: bytes.NewReader(in)}), 256)
		if err != nil {
			t.Fatal(err)
		}
		for range len(in) + 1 {
			p, err := rd.Next()
			if err != nil {
				return
			}
			if len(p) > 256 {
				t.Fatalf("a %d-byte message passed the 256-byte limit", len(p))
			}
		}
		t.Fatalf("%d bytes read as more than %d messages", len(in), len(in)+1)
	})
}
