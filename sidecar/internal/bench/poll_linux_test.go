//go:build linux

package bench

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many subscribers are read by the epoll loops, not a goroutine each, and
// every check holds as it did: each connection's events arrive whole and
// in order however the bytes are cut (SSE chunks mid-line, WebSocket
// messages in fragments with a ping inside), a jump in seq counts as
// loss, and a connection the server closes is an error of its own while
// the others go on.
//
// Not parallel with the package's other tests: it counts the reader
// goroutines of the whole process, and the fanout tests' small pools
// (below pollFrom) read on goroutines of their own.
func TestPollReadsManySubscribers(t *testing.T) {
	const perKind, last = 30, 200 // 200 events: more than a read buffer
	host := scriptServer(t, last)
	for _, tr := range []string{"sse", "ws"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			e := &env{errSamples: map[string]int{}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p := e.newPool(ctx, pollFrom)
			var (
				ops    atomic.Int64
				mu     sync.Mutex
				ended  []error
				cons   = map[string][]*consumer{}
				kinds  = []string{"ok", "gap", "close"}
				closed = make(chan struct{}, perKind)
			)
			for i := range 3 * perKind {
				kind := kinds[i%3]
				c := &consumer{e: e, key: i, ops: &ops}
				cons[kind] = append(cons[kind], c)
				err := p.add(host, tr, "/"+kind, c, 0, nil, func(err error) {
					if kind == "close" {
						mu.Lock()
						ended = append(ended, err)
						mu.Unlock()
						closed <- struct{}{}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for range perKind {
				<-closed
			}
			waitSeq(t, cons["ok"], last)
			waitSeq(t, cons["gap"], last)
			if n := goroutinesIn("(*consumer).run("); n != 0 {
				t.Errorf("%d subscribers read on goroutines of their own, want all on the epoll loops", n)
			}
			p.close()
			for kind, want := range map[string]int64{"ok": last, "gap": last - 4, "close": 10} {
				for _, c := range cons[kind] {
					if c.count != want {
						t.Errorf("%s subscriber %d: %d events, want %d", kind, c.key, c.count, want)
					}
				}
			}
			if got, want := e.lost.Load(), int64(4*perKind); got != want {
				t.Errorf("lost %d, want %d (4 per gap connection)", got, want)
			}
			if e.dups.Load() != 0 {
				t.Errorf("%d duplicates", e.dups.Load())
			}
			if e.errs.Load() != perKind {
				t.Errorf("%d errors, want one per closed connection (%d): %v", e.errs.Load(), perKind, e.errSamples)
			}
			for _, err := range ended {
				if err == nil {
					t.Error("a connection the server closed ended without an error")
				}
			}
		})
	}
}

// waitSeq waits (bounded) until each consumer saw seq.
func waitSeq(t *testing.T, cons []*consumer, seq uint64) {
	t.Helper()
	for range 1000 {
		done := true
		for _, c := range cons {
			done = done && c.lastSeq.Load() >= seq
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("subscribers did not reach seq %d", seq)
}

// goroutinesIn counts the goroutines whose stack has fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}

// scriptServer serves /ok (seqs 1..last), /gap (1..20 and 25..last) and
// /close (1..10, then the server closes) over SSE (chunked) or WebSocket,
// in pieces cut at odd places, written a few milliseconds apart.
func scriptServer(t *testing.T, last int) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		ws := r.Header.Get("Sec-WebSocket-Key") != ""
		var stream []byte
		for seq := 1; seq <= last; seq++ {
			if (r.URL.Path == "/gap" && seq > 20 && seq < 25) || (r.URL.Path == "/close" && seq > 10) {
				continue
			}
			if ws {
				stream = append(stream, wsEvent(seq, r.URL.Path != "/close")...)
			} else {
				stream = fmt.Appendf(stream, "id: %d\ndata: {\"n\":%d}\n\n", seq, seq)
			}
		}
		head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		if ws {
			sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
		} else {
			var chunked []byte
			for b := stream; len(b) > 0; b = b[min(13, len(b)):] {
				chunked = fmt.Appendf(chunked, "%x\r\n%s\r\n", min(13, len(b)), b[:min(13, len(b))])
			}
			stream = chunked
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if _, err := c.Write([]byte(head)); err != nil {
			return
		}
		for _, cut := range []int{1, 7, 101, 333, len(stream)} {
			cut = min(cut, len(stream))
			if _, err := c.Write(stream[:cut]); err != nil {
				return
			}
			stream = stream[cut:]
			time.Sleep(2 * time.Millisecond) // most likely a read of its own
		}
		if r.URL.Path != "/close" {
			_, _ = io.Copy(io.Discard, c) // until the client closes
		}
	}))
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return srv.Listener.Addr().String()
}

// wsEvent is event seq as a server's WebSocket envelope; every third in
// two fragments, with a ping between them if ping (not to a connection
// the server closes: the pong would find it closed).
func wsEvent(seq int, ping bool) []byte {
	p := fmt.Appendf(nil, `{"seq":%d,"type":"log","data":{}}`, seq)
	if seq%3 != 0 {
		return append([]byte{0x81, byte(len(p))}, p...)
	}
	h := len(p) / 2
	out := append([]byte{0x01, byte(h)}, p[:h]...)
	if ping {
		out = append(out, 0x89, 2, 'h', 'i')
	}
	out = append(out, 0x80, byte(len(p)-h))
	return append(out, p[h:]...)
}
