package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// goroutineStacks returns every goroutine's stack, one per entry.
func goroutineStacks(t *testing.T) []string {
	t.Helper()
	buf := make([]byte, 1<<20)
	for i := 0; i < 8; i++ {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
	t.Fatal("goroutine dump larger than 128 MiB")
	return nil
}

// An idle SSE subscriber is served after its Hertz handler returned, on a
// goroutine of its own: no Hertz connection goroutine (its grown stack,
// read buffer and request context) waits with it. The stream still
// delivers live events, resumes from Last-Event-ID and ends on hangup.
func TestSSEServedAfterHandlerReturned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour})
	e.do("PUT", "/log", "")
	id := e.ems.order[len(e.ems.order)-1]
	st, err := e.ems.Stream(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(id, 3)
	readers := []*sseReader{e.openSSE("/sse/log/"+id, "Last-Event-ID", "1"), e.openSSE("/api/v1/streams/" + id + "/sse?after=2")}
	for _, r := range readers {
		if f, err := r.next(); err != nil || f.retry == "" {
			t.Fatalf("retry block: %+v, %v", f, err)
		}
	}
	// Every SSE writer of this package's servers, this test's two among
	// them, runs outside Hertz's connection loop. The retry block goes out
	// before the writer goroutine starts, so wait (bounded) until both
	// writers are running.
	writers := 0
	for i := 0; i < 400 && writers < len(readers); i++ {
		if i > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		writers = 0
		for _, g := range goroutineStacks(t) {
			if !strings.Contains(g, "sidecar/internal/stream.ServeSSE(") && !strings.Contains(g, "sidecar/internal/stream.(*SSEStream).Run(") &&
				!strings.Contains(g, "sidecar/internal/stream.(*FanSSE).Serve(") {
				continue
			}
			writers++
			if strings.Contains(g, "http1.Server.Serve") {
				t.Fatalf("an SSE writer runs on Hertz's connection goroutine:\n%s", g)
			}
		}
	}
	if writers < len(readers) {
		t.Fatalf("%d SSE writer goroutines, want at least %d", writers, len(readers))
	}
	for _, want := range []string{"2", "3"} {
		if f := readers[0].nextEvent(t); f.id != want {
			t.Fatalf("resumed after Last-Event-ID 1: got %+v, want id %s", f, want)
		}
	}
	if f := readers[1].nextEvent(t); f.id != "3" {
		t.Fatalf("resumed after 2: got %+v, want id 3", f)
	}
	e.publish(id, 1)
	for _, r := range readers {
		if f := r.nextEvent(t); f.id != "4" {
			t.Fatalf("live event: %+v", f)
		}
	}
	for _, r := range readers {
		r.resp.Body.Close()
	}
	for i := 0; i < 2000 && st.Subscribers() != 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := st.Subscribers(); n != 0 {
		t.Fatalf("subscribers %d after the clients left, want 0", n)
	}
}

// The stream owns its socket: the response says Connection: close, and
// once the stream ended the server closes the connection (nothing leaks,
// and no client sends a next request on it).
func TestSSEClosesConnectionWhenStreamEnds(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	e := newEnvLog(t, Options{HeartbeatInterval: time.Hour}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if code, _, b := e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"short"}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A safety net for a server that never ends the stream, not a timing.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET /sse/log/short HTTP/1.1\r\nHost: x\r\nX-Request-Id: sse-short-1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !resp.Close || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" ||
		resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get(RequestIDHeader) != "sse-short-1" {
		t.Fatalf("status %d close %v te %v headers %v", resp.StatusCode, resp.Close, resp.TransferEncoding, resp.Header)
	}
	r := &sseReader{resp: resp, br: bufio.NewReader(resp.Body)}
	if f, err := r.next(); err != nil || f.retry == "" {
		t.Fatalf("retry block: %+v, %v", f, err)
	}
	for _, l := range logs.lines() {
		if l["msg"] == "request" && l[requestIDKey] == "sse-short-1" {
			t.Fatalf("access line logged while the stream is open: %v", l)
		}
	}
	if code, _, b := e.do("DELETE", "/api/v1/emitters/short", ""); code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if _, err := r.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("want a clean end of the body, got %v", err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the stream: read %d, %v; want the server to close the connection", n, err)
	}
	// The access line comes when the stream ended, with its route.
	var line map[string]any
	for i := 0; i < 2000 && line == nil; i++ {
		for _, l := range logs.lines() {
			if l["msg"] == "request" && l[requestIDKey] == "sse-short-1" {
				line = l
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if line == nil || line["status"] != float64(200) || line["route"] != "/sse/log/:id" || line["method"] != "GET" {
		t.Fatalf("access line %v", line)
	}
}

// A client that stopped reading keeps its stream's writer blocked in a
// write. When Close's ctx ends first, Close force-closes the socket and
// says its ctx ended (as it did when a stuck Hertz handler held
// Shutdown), and the hangup watcher, which stops at once, adds no error
// of its own. The wrong answers came from selects on two ready channels,
// so the check runs on three servers.
func TestCloseReportsStuckSSEStream(t *testing.T) {
	t.Parallel()
	for i := 0; i < 3; i++ {
		err := closeWithStuckSSE(t)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
			!strings.HasPrefix(err.Error(), "httpapi: close") || strings.Contains(err.Error(), "hangup watcher") {
			t.Fatalf("server %d: Close with a stuck SSE stream: %v; want httpapi: close: context deadline exceeded", i, err)
		}
	}
}

// closeWithStuckSSE serves one SSE client that reads nothing after the
// headers until the stream's writer blocks, then returns Close's error.
func closeWithStuckSSE(t *testing.T) error {
	t.Helper()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour})
	e.closed = true
	stuckSSEClient(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	return e.srv.Close(ctx)
}

// stuckSSEClient opens an SSE stream that reads nothing after the
// headers, fills it until the stream's writer blocks in a write, and
// returns the client's connection (closed at the end of the test).
func stuckSSEClient(t *testing.T, e *env) net.Conn {
	t.Helper()
	return stuckSSEClientBuf(t, e, 4<<10, 16)
}

// stuckSSEClientBuf is stuckSSEClient with the client's receive buffer
// (0: the system's) and the MiB published to fill the buffers.
func stuckSSEClientBuf(t *testing.T, e *env, rcvbuf, mib int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if rcvbuf > 0 {
		_ = conn.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	if _, err := io.WriteString(conn, "GET /time HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a safety net
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	st, err := e.ems.Stream(context.Background(), "time")
	if err != nil {
		t.Fatal(err)
	}
	// More than the socket buffers of both ends hold.
	big := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)
	for i := 0; i < mib*5/2; i++ {
		drafts := make([]event.Draft, 50)
		for j := range drafts {
			drafts[j] = event.Draft{Type: "line", Data: big}
		}
		if _, err := st.Publish(context.Background(), drafts, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2000; i++ {
		if i > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		for _, g := range goroutineStacks(t) {
			if (strings.Contains(g, "(*SSEStream).Run(") || strings.Contains(g, "(*FanSSE).Serve(")) && strings.Contains(g, "(*rawChunked).writev(") && strings.Contains(g, "IO wait") {
				return conn
			}
		}
	}
	t.Fatal("the SSE writer never blocked on the client that reads nothing")
	return nil
}

// A subscriber that stops reading is dropped once a write has waited
// WriteTimeout: its stream ends and its subscription is released, with
// no hangup from the client and no Close. Before, the writer stayed
// blocked until the client went away or the server closed.
//
// Not parallel: the check of the end looks at every goroutine of the
// process, and a parallel test that leaves a writer stuck on purpose
// (Close with a stuck stream) would be taken for this one's.
func TestSSEDropsClientThatStopsReading(t *testing.T) {
	e := newEnv(t, Options{HeartbeatInterval: time.Hour, WriteTimeout: 300 * time.Millisecond})
	stuckSSEClient(t, e)
	for i := 0; ; i++ {
		e.srv.streams.mu.Lock()
		n := e.srv.streams.n
		e.srv.streams.mu.Unlock()
		if n == 0 {
			break
		}
		if i == 2000 {
			t.Fatalf("%d SSE streams still served 20 s after their client stopped reading", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, g := range goroutineStacks(t) {
		if strings.Contains(g, "(*rawChunked).writev(") {
			t.Fatalf("a writer is still blocked:\n%s", g)
		}
	}
}

// An HTTP/1.0 client (nginx proxies with 1.0 unless told otherwise) must
// not get a transfer coding: its SSE body is the events as they are,
// ended by the server closing the connection. HTTP/1.1 stays chunked.
func TestSSEFramingFollowsRequestVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour})
	for i, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
		id := fmt.Sprintf("v%d", i)
		if code, _, b := e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"`+id+`"}`); code != 201 {
			t.Fatalf("create: %d %s", code, b)
		}
		conn, err := net.Dial("tcp", e.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net
		if _, err := io.WriteString(conn, "GET /sse/log/"+id+" "+proto+"\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		head, err := readHead(br)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		chunked := strings.Contains(strings.ToLower(head), "transfer-encoding: chunked")
		if chunked != (proto == "HTTP/1.1") || strings.Contains(strings.ToLower(head), "content-length") ||
			strings.Contains(strings.ToLower(head), "identity") {
			t.Fatalf("%s: response head\n%s", proto, head)
		}
		if code, _, b := e.do("DELETE", "/api/v1/emitters/"+id, ""); code != 204 {
			t.Fatalf("delete: %d %s", code, b)
		}
		body, err := io.ReadAll(br) // to the server's close
		if err != nil {
			t.Fatalf("%s: body: %v", proto, err)
		}
		want := "retry:"
		if chunked {
			want = "" // a chunk size line first, checked by http.ReadResponse in other tests
		}
		if !strings.HasPrefix(string(body), want) || (chunked && !strings.HasSuffix(string(body), "0\r\n\r\n")) {
			t.Fatalf("%s: body %q", proto, body)
		}
	}
}

// readHead reads a response's status line and headers, raw.
func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// A stream refused because Close began after its handler checked still
// answers: an empty, ended 200, to an HTTP/1.0 client too. The 1.0
// writer wrote nothing when it was finalized before any event (the
// headers go out with the first write), so the client got no response
// at all, only the connection's close.
func TestSSERefusedStreamAnswersEveryVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour})
	// What Close does first, without cancelling the server: the handler
	// passes its check and the stream is then refused.
	e.srv.streams.close()
	for _, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
		conn, err := net.Dial("tcp", e.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net
		if _, err := io.WriteString(conn, "GET /sse/log/time "+proto+"\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("%s: no response: %v", proto, err)
		}
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || err != nil || len(body) != 0 {
			t.Fatalf("%s: %d %q %v", proto, resp.StatusCode, body, err)
		}
	}
}
