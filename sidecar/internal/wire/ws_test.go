package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// wsServer is a real Hertz server: /echo echoes messages through the
// library; /batch sends the frames wire.AppendFrame built in one write;
// /refuse answers 403 with a JSON body; /deflate accepts with an
// extension nobody asked for.
func wsServer(t *testing.T, batch [][]byte) string {
	t.Helper()
	up := websocket.HertzUpgrader{}
	return "ws://" + hertzServer(t, func(h *server.Hertz) {
		h.GET("/echo", func(_ context.Context, c *app.RequestContext) {
			if got := string(c.GetHeader("Authorization")); got != "Bearer t" {
				c.AbortWithStatus(http.StatusUnauthorized)
				return
			}
			_ = up.Upgrade(c, func(conn *websocket.Conn) {
				for {
					mt, msg, err := conn.ReadMessage()
					if err != nil || conn.WriteMessage(mt, msg) != nil {
						return
					}
				}
			})
		})
		h.GET("/batch", func(_ context.Context, c *app.RequestContext) {
			_ = up.Upgrade(c, func(conn *websocket.Conn) {
				var b []byte
				for _, p := range batch {
					b = wire.AppendFrame(b, wire.OpText, p, nil)
				}
				_, _ = conn.NetConn().Write(b)
				_, _, _ = conn.ReadMessage() // until the client leaves
			})
		})
		h.GET("/refuse", func(_ context.Context, c *app.RequestContext) {
			c.Data(http.StatusForbidden, "application/json", []byte(`{"error":{"code":"forbidden","message":"no"}}`))
		})
	})
}

// hertzServer runs a real Hertz server (standard transport, loopback)
// with the routes route adds and returns its address; cleanup (after
// the test's own) shuts it down.
func hertzServer(tb testing.TB, route func(h *server.Hertz)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := server.New(server.WithTransport(standard.NewTransporter), server.WithListener(ln), server.WithDisablePrintRoute(true))
	h.NoHijackConnPool = true
	route(h)
	go func() { _ = h.Run() }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	for range 200 {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ln.Addr().String()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A client made by DialWS talks to the library's server both ways, with
// masked frames (the library's server refuses unmasked ones) and the
// caller's headers on the opening request.
func TestDialWSEchoes(t *testing.T) {
	t.Parallel()
	base := wsServer(t, nil)
	conn, err := wire.DialWS(ctxT(t), base+"/echo", wire.DialOptions{Header: http.Header{"Authorization": {"Bearer t"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, msg := range []string{"a", strings.Repeat("x", 200), strings.Repeat("y", 70000)} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		mt, got, err := conn.ReadMessage()
		if err != nil || mt != websocket.TextMessage || string(got) != msg {
			t.Fatalf("echo of %d bytes: %d %d bytes %v", len(msg), mt, len(got), err)
		}
	}
}

// Frames built by AppendFrame (every length encoding) and written in one
// syscall read back through the library as the messages they carry.
func TestAppendFrameReadsBackThroughTheLibrary(t *testing.T) {
	t.Parallel()
	batch := [][]byte{nil, []byte("{}"), bytes.Repeat([]byte("a"), 125), bytes.Repeat([]byte("b"), 126),
		bytes.Repeat([]byte("c"), 65535), bytes.Repeat([]byte("d"), 65536)}
	conn, err := wire.DialWS(ctxT(t), wsServer(t, batch)+"/batch", wire.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, want := range batch {
		mt, got, err := conn.ReadMessage()
		if err != nil || mt != websocket.TextMessage || !bytes.Equal(got, want) {
			t.Fatalf("message %d: type %d, %d bytes (want %d): %v", i, mt, len(got), len(want), err)
		}
	}
}

// A masked frame unmasks to its payload with the key that follows its
// length (RFC 6455 5.3), and the mask bit is set.
func TestAppendFrameMasks(t *testing.T) {
	t.Parallel()
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 5, 125, 126, 65535, 65536} {
		p := bytes.Repeat([]byte{'z'}, n)
		f := wire.AppendFrame([]byte("prefix"), wire.OpText, p, &key)
		f = f[len("prefix"):]
		hdr := map[bool]int{true: 2, false: 0}[n <= 125]
		switch {
		case n <= 125:
		case n <= 65535:
			hdr = 4
		default:
			hdr = 10
		}
		if f[0] != 0x81 || f[1]&0x80 == 0 || !bytes.Equal(f[hdr:hdr+4], key[:]) {
			t.Fatalf("%d bytes: header % x", n, f[:hdr+4])
		}
		body := f[hdr+4:]
		for i := range body {
			body[i] ^= key[i&3]
		}
		if !bytes.Equal(body, p) {
			t.Fatalf("%d bytes: payload does not unmask", n)
		}
	}
}

// A refused opening handshake is the server's status and body, not a
// generic failure; a 101 that accepts an extension nobody offered is
// refused by the client.
func TestDialWSRefusals(t *testing.T) {
	t.Parallel()
	base := wsServer(t, nil)
	_, err := wire.DialWS(ctxT(t), base+"/refuse", wire.DialOptions{})
	var he *wire.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || !strings.Contains(string(he.Body), `"forbidden"`) {
		t.Fatalf("refused: %v", err)
	}
	if _, err := wire.DialWS(ctxT(t), base+"/echo", wire.DialOptions{}); !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("without the header: %v", err)
	}
	if _, err := wire.DialWS(ctxT(t), rawServer(t, "Sec-WebSocket-Extensions: permessage-deflate\r\n"), wire.DialOptions{}); !errors.Is(err, wire.ErrHandshake) {
		t.Fatalf("unasked extension: %v", err)
	}
	if _, err := wire.DialWS(ctxT(t), rawServer(t, "Sec-WebSocket-Accept: bad\r\n"), wire.DialOptions{}); !errors.Is(err, wire.ErrHandshake) {
		t.Fatalf("bad accept: %v", err)
	}
}

// rawServer answers one opening handshake with a 101 carrying the right
// accept key (unless extra sets another) and the extra header lines.
func rawServer(t *testing.T, extra string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		accept := "Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
		if strings.HasPrefix(extra, "Sec-WebSocket-Accept") {
			accept = ""
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+accept+extra+"\r\n")
		_, _ = io.Copy(io.Discard, c)
	}()
	return "ws://" + ln.Addr().String() + "/x"
}
