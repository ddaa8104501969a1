package apiclient

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wsServer is a minimal RFC 6455 server (handshake + unmasked text
// frames) that sends a few envelopes per connection, re-sends some the
// client already has, then drops the TCP connection without a close frame.
type wsServer struct {
	perConn, replay int

	mu     sync.Mutex
	afters []string
}

func (s *wsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.afters = append(s.afters, r.URL.Query().Get("after"))
	s.mu.Unlock()
	if r.Header.Get("Upgrade") != "websocket" {
		http.Error(w, `{"error":{"code":"websocket_required","message":"no"}}`, http.StatusBadRequest)
		return
	}
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	start := max(0, int(after)-s.replay)
	left := s.perConn
	for _, f := range script() {
		if f.seq <= uint64(start) {
			continue
		}
		if left == 0 {
			break // drop: the TCP connection just ends
		}
		payload := fmt.Sprintf(`{"stream":"x","seq":%d,"type":%q,"time":"2026-01-02T03:04:05Z","data":%s}`, f.seq, f.typ, f.data)
		frame := []byte{0x81, 126, 0, 0}
		binary.BigEndian.PutUint16(frame[2:], uint16(len(payload)))
		rw.Write(append(frame, payload...))
		left--
	}
	rw.Flush()
}

func TestFollowWSResumesWithoutLossOrDuplicates(t *testing.T) {
	t.Parallel()
	srv := &wsServer{perConn: 3, replay: 2}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, reconnects := followN(t, c, "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/v1/streams/x/ws?after=0",
		FollowOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, 9)
	want := []string{`1 log {"line":1}`, `2 log {"line":2}`, `3 log {"line":3}`, `4 log {"line":4}`, `5 log {"line":5}`,
		`8 gap {"from":6,"to":8}`, `9 log {"line":9}`, `10 log {"line":10}`, `11 log {"line":11}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if reconnects == 0 || srv.afters[0] != "0" || srv.afters[1] != "3" {
		t.Fatalf("%d reconnects, after= per connection %q: want resumes after the last delivered seq", reconnects, srv.afters)
	}
}

func TestFollowWSRefusedHandshakeIsAnAPIError(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"stream \"x\" not found"}}`)
	}))
	defer ts.Close()
	c, _ := New(ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.FollowURL(ctx, ts.URL+"/api/v1/streams/x/ws", FollowOptions{Transport: TransportWS}, func(Event) error { return nil })
	if !IsNotFound(err) || !strings.Contains(err.Error(), `stream "x" not found`) {
		t.Fatalf("err %v, want the server's 404", err)
	}
}
