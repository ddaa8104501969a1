package wire

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
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

// BenchmarkWSReadByHand reads them with the frame reader the load
// generator had before (header, length, payload into a reused buffer).
func BenchmarkWSReadByHand(b *testing.B) {
	br := bufio.NewReaderSize(&loopConn{frames: fanoutFrames()}, 4096)
	var hdr [10]byte
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			b.Fatal(err)
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			_, _ = io.ReadFull(br, hdr[2:4])
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			_, _ = io.ReadFull(br, hdr[2:10])
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		buf = append(buf[:0], make([]byte, n)...)[:n]
		if _, err := io.ReadFull(br, buf); err != nil || len(buf) != 150 {
			b.Fatal(err)
		}
	}
}
