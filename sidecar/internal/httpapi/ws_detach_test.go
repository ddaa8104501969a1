package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/core/event"
)

// An idle stream WebSocket is served after its Hertz handler returned,
// on a goroutine of its own (streamhttp's tests show no reader waits for
// its quiet client); the socket still carries resumes and events.
func TestWSServedAfterHandlerReturned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour})
	var conns []*websocket.Conn
	for _, p := range []string{"/ws/track/bob", "/api/v1/streams/track:bob/ws"} {
		c, code := e.dialWS(p)
		if c == nil {
			t.Fatalf("upgrade %s: %d", p, code)
		}
		conns = append(conns, c)
	}
	sessions := 0
	for i := 0; i < 400 && sessions < len(conns); i++ {
		if i > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		sessions = 0
		for _, g := range goroutineStacks(t) {
			if !strings.Contains(g, "sidecar/internal/stream.(*WSSession).Run(") {
				continue
			}
			sessions++
			if strings.Contains(g, "http1.Server.Serve") {
				t.Fatalf("a stream WebSocket runs on Hertz's connection goroutine:\n%s", g)
			}
		}
	}
	if sessions < len(conns) {
		t.Fatalf("%d WebSocket sessions, want at least %d", sessions, len(conns))
	}
	if code, _, body := e.do("GET", "/track/bob?data=1", ""); code != 202 {
		t.Fatalf("publish: %d %s", code, body)
	}
	for _, c := range conns {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"resume":0}`)); err != nil {
			t.Fatal(err)
		}
		for {
			if env := readEnvelope(t, c); env.Seq == 1 && env.Stream == "track:bob" {
				break
			}
		}
	}
}

// A WebSocket subscriber that stops reading is dropped once a write has
// waited WriteTimeout, as an SSE one is: its session ends and its
// subscription is released with no hangup from the client and no Close.
func TestWSDropsClientThatStopsReading(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour, WriteTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	_, err = io.WriteString(conn, "GET /api/v1/streams/time/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a safety net
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for i := 0; e.streamsServed() == 0; i++ {
		if i == 400 {
			t.Fatal("the WebSocket is not counted among the served streams")
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, err := e.ems.Stream(context.Background(), "time")
	if err != nil {
		t.Fatal(err)
	}
	// 16 MiB: more than the socket buffers of both ends hold.
	big := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)
	for i := 0; i < 40; i++ {
		drafts := make([]event.Draft, 50)
		for j := range drafts {
			drafts[j] = event.Draft{Type: "line", Data: big}
		}
		if _, err := st.Publish(context.Background(), drafts, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; e.streamsServed() != 0; i++ {
		if i == 2000 {
			t.Fatal("the WebSocket is still served 20 s after its client stopped reading")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamsServed counts the stream responses served off Hertz's goroutine.
func (e *env) streamsServed() int {
	e.srv.streams.mu.Lock()
	defer e.srv.streams.mu.Unlock()
	return e.srv.streams.n
}
