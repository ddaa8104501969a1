package rawio_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/sidecar/internal/rawio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A write bigger than the socket buffers completes once the peer reads,
// and a read waits for data, then reports the peer's close as io.EOF.
func TestWriteWholeAndReadToEOF(t *testing.T) {
	t.Parallel()
	a, b := pair(t)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		p := make([]byte, 32<<10)
		raw := rawio.Conn(b)
		for {
			n, err := rawio.Read(b, raw, p)
			buf.Write(p[:n])
			if err != nil {
				if !errors.Is(err, io.EOF) {
					buf.WriteString("ERR " + err.Error())
				}
				got <- buf.Bytes()
				return
			}
		}
	}()
	n, err := rawio.Write(a, rawio.Conn(a), msg)
	if err != nil || n != len(msg) {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(msg))
	}
	a.Close()
	if r := <-got; !bytes.Equal(r, msg) {
		t.Fatalf("read %d bytes (%.40q…), want the %d written", len(r), r, len(msg))
	}
}

// A peer that never reads: the write deadline ends the wait with the
// deadline error, as net.Conn's Write does.
func TestWriteDeadline(t *testing.T) {
	t.Parallel()
	a, _ := pair(t)
	raw := rawio.Conn(a)
	if err := a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := rawio.Write(a, raw, make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read: %v, want the deadline error", err)
	}
}

// Reading a closed connection fails with net.ErrClosed, not a hang.
func TestReadClosed(t *testing.T) {
	t.Parallel()
	a, _ := pair(t)
	raw := rawio.Conn(a)
	a.Close()
	if _, err := rawio.Read(a, raw, make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
}
