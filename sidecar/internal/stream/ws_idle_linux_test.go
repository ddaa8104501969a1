//go:build linux

package streamhttp

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// goroutinesIn counts the goroutines whose stack contains fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), fn)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitGoroutines waits (bounded) until cond holds for the count of
// goroutines in fn, and returns the last count.
func waitGoroutines(fn string, cond func(int) bool) int {
	n := goroutinesIn(fn)
	for i := 0; i < 1000 && !cond(n); i++ {
		time.Sleep(5 * time.Millisecond)
		n = goroutinesIn(fn)
	}
	return n
}

// clientFrame is a masked client frame, as a browser sends it.
func clientFrame(op byte, p []byte) []byte {
	m := wire.RandomMask()
	return wire.AppendFrame(nil, op, p, &m)
}

// readServerFrame reads one unmasked server frame.
func readServerFrame(t *testing.T, br *bufio.Reader) (op byte, p []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	p = make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, p
}

type wsPeer struct {
	conn net.Conn
	br   *bufio.Reader
}

// serveIdle starts n sessions on quiet st, each over loopback TCP with
// the watcher, and returns their clients and a channel of their ends.
func serveIdle(t *testing.T, ctx context.Context, st *stream.Stream, n int, o WSOptions, w *HangupWatcher, buffered []byte) ([]wsPeer, <-chan error) {
	t.Helper()
	ended := make(chan error, n)
	peers := make([]wsPeer, n)
	for i := range peers {
		srv, cli := tcpPair(t)
		_ = cli.SetDeadline(time.Now().Add(60 * time.Second)) // a safety net
		peers[i] = wsPeer{conn: cli, br: bufio.NewReader(cli)}
		// Started here and run on a new goroutine, as httpapi does.
		ws := StartWS(ctx, WSConn{Conn: srv, Watcher: w, Buffered: buffered}, st, stream.FromNow(), o)
		go func() { ended <- ws.Run() }()
	}
	return peers, ended
}

// Idle stream sockets park only their writer: no goroutine waits in a
// read while the client is quiet, yet a frame the client sends is read
// (a ping answered, a resume replayed), bytes the HTTP server read past
// the handshake count as sent, and a client that hangs up ends its
// session. Not parallel: it counts the process's goroutines.
func TestWSIdleSessionsHoldNoReader(t *testing.T) {
	hub := newHub(t)
	ctx := context.Background()
	st, err := hub.Open(ctx, "idle-ws", stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(ctx, drafts(2), nil); err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t)
	const n = 200
	o := WSOptions{Heartbeat: time.Hour}
	peers, ended := serveIdle(t, ctx, st, n, o, w, nil)
	// One more whose resume request came with its handshake.
	early, endedEarly := serveIdle(t, ctx, st, 1, o, w, clientFrame(wire.OpText, []byte(`{"resume":1}`)))
	if got := waitGoroutines("stream.(*Subscription).NextUntil(", func(c int) bool { return c >= n+1 }); got < n+1 {
		t.Fatalf("%d of %d writers parked", got, n+1)
	}
	if op, p := readServerFrame(t, early[0].br); op != wire.OpText || !strings.Contains(string(p), `"seq":2`) {
		t.Fatalf("early resume: op %d %s", op, p)
	}
	if got := waitGoroutines("(*WSSession).readBurst(", func(c int) bool { return c == 0 }); got != 0 {
		t.Fatalf("%d goroutines reading %d idle sockets, want 0", got, n+1)
	}

	c := peers[0]
	if _, err := c.conn.Write(clientFrame(wire.OpPing, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	if op, p := readServerFrame(t, c.br); op != wire.OpPong || string(p) != "hi" {
		t.Fatalf("ping answered with op %d %q", op, p)
	}
	if _, err := c.conn.Write(clientFrame(wire.OpText, []byte(`{"resume":0}`))); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		op, p := readServerFrame(t, c.br)
		var env struct{ Seq uint64 }
		if op != wire.OpText || json.Unmarshal(p, &env) != nil || env.Seq != want {
			t.Fatalf("after resume: op %d %s, want seq %d", op, p, want)
		}
	}
	if got := waitGoroutines("(*WSSession).readBurst(", func(c int) bool { return c == 0 }); got != 0 {
		t.Fatalf("%d readers left after the client's frames were read", got)
	}

	for _, p := range append(peers, early...) {
		_ = p.conn.Close()
	}
	deadline := time.After(30 * time.Second)
	for i := 0; i < n+1; i++ {
		select {
		case <-ended:
		case <-endedEarly:
		case <-deadline:
			t.Fatalf("%d of %d sessions still served after their client hung up", n+1-i, n+1)
		}
	}
}

// With no read waiting on a quiet socket, a client that answers no ping
// is still dropped (two heartbeats and a write timeout after it was last
// heard), as the reader's deadline dropped it before; one that answers
// stays. Not parallel: serveIdle's sessions share the watcher.
func TestWSDropsSilentClient(t *testing.T) {
	hub := newHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := hub.Open(ctx, "silent-ws", stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t)
	// A write timeout well above the heartbeat: a write starts its
	// deadline before the write itself, and a writer descheduled between
	// the two on a loaded machine would time out a write the live client
	// was ready to read (and, with the close frame's write timing out
	// too, leave it waiting on an open socket).
	o := WSOptions{Heartbeat: 100 * time.Millisecond, WriteTimeout: time.Second}
	_, endedSilent := serveIdle(t, ctx, st, 1, o, w, nil)
	live, endedLive := serveIdle(t, ctx, st, 1, o, w, nil)
	pings := 0
	for pings < 20 { // 2 s of heartbeats: past the silent client's limit (1.2 s)
		op, p := readServerFrame(t, live[0].br)
		if op != wire.OpPing {
			t.Fatalf("live client got op %d", op)
		}
		pings++
		if _, err := live[0].conn.Write(clientFrame(wire.OpPong, p)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-endedSilent:
	case <-time.After(20 * time.Second):
		t.Fatal("a client that answers no ping is still served")
	}
	select {
	case <-endedLive:
		t.Fatal("a client that answers every ping was dropped")
	default:
	}
	cancel()
	<-endedLive
}
