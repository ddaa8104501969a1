package apiclient

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
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
	err := c.FollowURL(ctx, ts.URL+"/api/v1/streams/x/ws", FollowOptions{Transport: TransportWS}, func(api.Event) error { return nil })
	if !IsNotFound(err) || !strings.Contains(err.Error(), `stream "x" not found`) {
		t.Fatalf("err %v, want the server's 404", err)
	}
}

// wsPeer is the server end of one test WebSocket: it writes raw server
// frames and reads the client's frames one at a time (control included).
type wsPeer struct {
	conn net.Conn
	br   *bufio.Reader
}

// send writes frames in one write.
func (p *wsPeer) send(frames ...[]byte) error {
	_, err := p.conn.Write(cat(frames...))
	return err
}

// read returns the client's next frame, unmasked; an unmasked frame is
// an error (clients must mask, §5.1).
func (p *wsPeer) read() (byte, string, error) {
	h, err := readHeader(p.br)
	if err != nil {
		return 0, "", err
	}
	if !h.masked || !h.fin {
		return 0, "", fmt.Errorf("client frame masked=%t fin=%t", h.masked, h.fin)
	}
	var b []byte
	err = (&wsReader{r: p.br}).readPayload(h, &b)
	return h.op, string(b), err
}

// peerServer runs script on every WebSocket connection (n from 0) after a
// correct handshake, or answers refuse(n) with our JSON error if it is not
// zero. Cleanup waits for every handler: none outlives the test.
type peerServer struct {
	script func(n int, p *wsPeer)
	refuse func(n int) int
	accept func(key string) string // the Sec-WebSocket-Accept to send

	mu      sync.Mutex
	conns   int
	afters  []string
	headers []http.Header
	wg      sync.WaitGroup
}

func startPeer(t *testing.T, s *peerServer, tls bool) *httptest.Server {
	t.Helper()
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(s)
	} else {
		ts = httptest.NewServer(s)
	}
	t.Cleanup(func() { ts.Close(); s.wg.Wait() })
	return ts
}

func (s *peerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	s.mu.Lock()
	n := s.conns
	s.conns++
	s.afters = append(s.afters, r.URL.Query().Get("after"))
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	if s.refuse != nil {
		if code := s.refuse(n); code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":{"code":"c%d","message":"scripted"}}`, code)
			return
		}
	}
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + wsAcceptGUID))
	accept := base64.StdEncoding.EncodeToString(sum[:])
	if s.accept != nil {
		accept = s.accept(r.Header.Get("Sec-WebSocket-Key"))
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // hang guard
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept)
	if rw.Flush() != nil {
		return
	}
	s.script(n, &wsPeer{conn: conn, br: rw.Reader})
}

// env is the envelope of event seq of stream x.
func env(seq uint64) string {
	return fmt.Sprintf(`{"stream":"x","seq":%d,"type":"log","time":"2026-01-02T03:04:05Z","data":{"n":%d}}`, seq, seq)
}

// record appends what happened on the peer's side.
type record struct {
	mu  sync.Mutex
	log []string
}

func (r *record) add(format string, args ...any) {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *record) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.log, "|")
}

// readLogged reads one client frame into rec as "op payload".
func readLogged(p *wsPeer, rec *record) {
	op, pl, err := p.read()
	if err != nil {
		rec.add("read error %v", err)
		return
	}
	rec.add("%#x %q", op, pl)
}

// Pings are answered with masked pongs, fragmented events reassembled,
// and a server's close 1000 is echoed and followed by a resume.
func TestFollowWSPingFragmentsAndClose(t *testing.T) {
	t.Parallel()
	var rec record
	srv := &peerServer{script: func(n int, p *wsPeer) {
		if n > 0 {
			_ = p.send(srvFrame(true, opText, env(3)))
			readLogged(p, &rec) // the client's close when its handler stops
			return
		}
		e1 := env(1)
		_ = p.send(srvFrame(true, opPing, "hb1"))
		readLogged(p, &rec)
		_ = p.send(srvFrame(false, opText, e1[:10]), srvFrame(true, opPing, "hb2"), srvFrame(false, opContinuation, e1[10:20]),
			srvFrame(true, opContinuation, e1[20:]))
		readLogged(p, &rec)
		_ = p.send(srvFrame(true, opText, env(2)), srvFrame(true, opClose, "\x03\xe8stream ended"))
		readLogged(p, &rec)
	}}
	ts := startPeer(t, srv, false)
	c, _ := New(ts.URL, WithToken("tok"), WithUserAgent("ua/1"))
	var errs []error
	o := FollowOptions{MinBackoff: time.Millisecond, OnReconnect: func(r Reconnect) { errs = append(errs, r.Err) }}
	got, _ := followN(t, c, "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/v1/streams/x/ws?after=0", o, 3)
	if want := `1 log {"n":1}|2 log {"n":2}|3 log {"n":3}`; strings.Join(got, "|") != want {
		t.Fatalf("events %q, want %s", got, want)
	}
	var ce *CloseError
	if len(errs) != 1 || !errors.As(errs[0], &ce) || ce.Code != CloseNormal || ce.Reason != "stream ended" {
		t.Fatalf("reconnect errors %v, want the server's close 1000", errs)
	}
	ts.Close()
	srv.wg.Wait()
	want := `0xa "hb1"|0xa "hb2"|0x8 "\x03\xe8"|0x8 "\x03\xe8"`
	if rec.String() != want {
		t.Fatalf("the server read %s\nwant %s", rec.String(), want)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	h := srv.headers[0]
	if fmt.Sprint(srv.afters) != "[0 2]" || h.Get("Authorization") != "Bearer tok" || h.Get("User-Agent") != "ua/1" ||
		h.Get("Sec-WebSocket-Version") != "13" || len(h.Get("Sec-WebSocket-Key")) != 24 {
		t.Fatalf("afters %v, handshake headers %v", srv.afters, h)
	}
	if srv.headers[0].Get("Sec-WebSocket-Key") == srv.headers[1].Get("Sec-WebSocket-Key") {
		t.Fatal("the handshake key is not fresh per connection")
	}
}

// What the server sends that this client cannot use ends Follow with
// ErrProtocol on the first connection, after telling the server why.
func TestFollowWSPermanentProtocolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		frames    []byte
		accept    func(string) string
		wantClose string // the client's close frame as the server reads it
	}{
		{"binary message", srvFrame(true, opBinary, "\x01\x02"), nil, "0x8 \"\\x03\\xebtext frames only\""},
		{"event over the limit", srvFrame(true, opText, env(1)+strings.Repeat(" ", 100)), nil, "0x8 \"\\x03\\xf1message of more than 128 bytes\""},
		{"reserved opcode", srvFrame(true, 0x3, "x"), nil, "0x8 \"\\x03\\xeareserved opcode 0x3\""},
		{"masked server frame", appendFrame(nil, opText, []byte(env(1)), &[4]byte{1, 2, 3, 4}), nil, "0x8 \"\\x03\\xeamasked=true frame, want false\""},
		{"not an envelope", srvFrame(true, opText, "[1,2]"), nil, "0x8 \"\\x03\\xebnot an event envelope\""},
		{"server refuses what we sent (1008)", srvFrame(true, opClose, "\x03\xf0bad frame"), nil, "0x8 \"\\x03\\xf0\""},
		{"wrong Sec-WebSocket-Accept", nil, func(string) string { return "AAAA" }, "read error EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec record
			srv := &peerServer{accept: tt.accept, script: func(_ int, p *wsPeer) {
				_ = p.send(tt.frames)
				readLogged(p, &rec)
			}}
			ts := startPeer(t, srv, false)
			c, _ := New(ts.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.FollowURL(ctx, ts.URL+"/api/v1/streams/x/ws?after=0",
				FollowOptions{Transport: TransportWS, MaxEventBytes: 128, MinBackoff: time.Millisecond}, func(api.Event) error { return nil })
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err %v, want ErrProtocol", err)
			}
			ts.Close()
			srv.wg.Wait()
			srv.mu.Lock()
			conns := srv.conns
			srv.mu.Unlock()
			if conns != 1 || rec.String() != tt.wantClose {
				t.Fatalf("%d connections, the server read %s; want 1 and %s (err %v)", conns, rec.String(), tt.wantClose, err)
			}
		})
	}
}

// A refused handshake maps to *APIError like REST: 5xx is retried, 4xx
// other than 408/429 is not.
func TestFollowWSRefusedHandshakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     []int
		wantStatus int
		wantConns  int
	}{
		{"401 is not retried", []int{401}, 401, 1},
		{"503 then 429 are retried, then 403 stops", []int{503, 429, 403}, 403, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &peerServer{
				refuse: func(n int) int { return tt.status[min(n, len(tt.status)-1)] },
				script: func(int, *wsPeer) {},
			}
			ts := startPeer(t, srv, false)
			c, _ := New(ts.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.FollowURL(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/x", FollowOptions{MinBackoff: time.Millisecond}, func(api.Event) error { return nil })
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tt.wantStatus || ae.Code != fmt.Sprintf("c%d", tt.wantStatus) || ae.Message != "scripted" {
				t.Fatalf("err %#v, want APIError %d", err, tt.wantStatus)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.conns != tt.wantConns {
				t.Fatalf("%d connections, want %d", srv.conns, tt.wantConns)
			}
		})
	}
}

// Cancelling ctx ends Follow with ctx.Err() and says goodbye with a close
// frame; a silent connection is dropped by the idle watchdog and resumed.
func TestFollowWSCancelAndIdle(t *testing.T) {
	t.Parallel()
	var rec record
	srv := &peerServer{script: func(n int, p *wsPeer) {
		_ = p.send(srvFrame(true, opText, env(uint64(n+1))))
		readLogged(p, &rec) // blocks: silent until the client leaves
	}}
	ts := startPeer(t, srv, false)
	c, _ := New(ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	o := FollowOptions{Transport: TransportWS, IdleTimeout: 50 * time.Millisecond, MinBackoff: time.Millisecond,
		OnReconnect: func(r Reconnect) { errs = append(errs, r.Err) }}
	var seqs []uint64
	err := c.FollowURL(ctx, ts.URL+"/ws/x?after=0", o, func(e api.Event) error {
		seqs = append(seqs, e.Seq)
		if len(seqs) == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("err %v after %v, want context.Canceled after [1 2 3]", err, seqs)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "no data for 50ms") || !errors.Is(errs[0], os.ErrDeadlineExceeded) {
		t.Fatalf("reconnect errors %v, want two idle timeouts", errs)
	}
	ts.Close()
	srv.wg.Wait()
	// The idle drops close the TCP connection without a frame; the cancel
	// sends close 1000.
	if log := rec.String(); !strings.HasSuffix(log, `0x8 "\x03\xe8"`) {
		t.Fatalf("the server read %s, want a close 1000 last", log)
	}
}

// The opening handshake honours ctx: a server that accepts the TCP
// connection and never answers does not hold Follow.
func TestFollowWSHandshakeHonoursContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		defer close(accepted)
		if conn, err := ln.Accept(); err == nil {
			accepted <- conn
		}
	}()
	c, _ := New("http://" + ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.FollowURL(ctx, "ws://"+ln.Addr().String()+"/ws/x", FollowOptions{}, func(api.Event) error { return nil })
	}()
	conn := <-accepted
	if conn == nil {
		t.Fatal("no connection")
	}
	defer conn.Close()
	// Read the whole request so that Follow is waiting for the answer.
	req, err := http.ReadRequest(bufio.NewReader(conn))
	if err != nil || req.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("request %v, %v", req, err)
	}
	cancel()
	// The guard is below the 15s handshake timeout: only ctx can end it.
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow ignored ctx during the handshake")
	}
}

// wss:// uses WithTLSConfig, or else the TLS config and dialer of
// WithHTTPClient's transport; without either the server is not trusted.
func TestFollowWSOverTLS(t *testing.T) {
	t.Parallel()
	srv := &peerServer{script: func(n int, p *wsPeer) {
		_ = p.send(srvFrame(true, opText, env(uint64(n+1))))
		_, _, _ = p.read()
	}}
	ts := startPeer(t, srv, true)
	roots := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	var dials atomic.Int32
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	wss := "wss" + strings.TrimPrefix(ts.URL, "https") + "/api/v1/streams/x/ws?after=0"
	for _, tt := range []struct {
		name  string
		opt   Option
		dials int32
	}{
		{"WithTLSConfig", WithTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}), 0},
		{"WithHTTPClient", WithHTTPClient(&http.Client{Transport: tr}), 1},
	} {
		c, _ := New(ts.URL, tt.opt)
		got, _ := followN(t, c, wss, FollowOptions{}, 1)
		if len(got) != 1 || dials.Swap(0) != tt.dials {
			t.Fatalf("%s: events %q, dials %d want %d", tt.name, got, dials.Load(), tt.dials)
		}
	}
	c, _ := New(ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rerr error
	err := c.FollowURL(ctx, wss, FollowOptions{OnReconnect: func(r Reconnect) { rerr = r.Err; cancel() }}, func(api.Event) error { return nil })
	var uerr x509.UnknownAuthorityError
	if !errors.Is(err, context.Canceled) || !errors.As(rerr, &uerr) {
		t.Fatalf("untrusted server: err %v, reconnect error %v; want an unknown authority", err, rerr)
	}
}

// The client's data frames are masked text the server can read back: the
// {"resume": seq} frame reaches the peer intact.
func TestWSConnWritesResume(t *testing.T) {
	t.Parallel()
	var rec record
	srv := &peerServer{script: func(_ int, p *wsPeer) {
		op, pl, err := p.read()
		if err != nil || op != opText {
			rec.add("read %#x %v", op, err)
			return
		}
		rec.add("%s", pl)
		_ = p.send(srvFrame(true, opText, "echo "+pl))
		readLogged(p, &rec)
	}}
	ts := startPeer(t, srv, false)
	c, _ := New(ts.URL)
	conn, err := c.dialWS(context.Background(), ts.URL+"/ws", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.writeResume(18446744073709551615); err != nil {
		t.Fatal(err)
	}
	op, msg, err := conn.rd.readMessage()
	if err != nil || op != opText || string(msg) != `echo {"resume":18446744073709551615}` {
		t.Fatalf("echo %#x %q %v", op, msg, err)
	}
	conn.writeClose(CloseNormal, "done")
	if err := conn.writeResume(1); !errors.Is(err, errCloseSent) {
		t.Fatalf("write after close: %v, want errCloseSent", err)
	}
	ts.Close()
	srv.wg.Wait()
	if want := `{"resume":18446744073709551615}|0x8 "\x03\xe8done"`; rec.String() != want {
		t.Fatalf("the server read %s, want %s", rec.String(), want)
	}
}

func TestCheckUpgrade(t *testing.T) {
	t.Parallel()
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3's example
	ok := http.Header{"Upgrade": {"WebSocket"}, "Connection": {"keep-alive, Upgrade"}, "Sec-Websocket-Accept": {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}
	if err := checkUpgrade(ok, key); err != nil {
		t.Fatalf("RFC example refused: %v", err)
	}
	for name, mutate := range map[string]func(http.Header){
		"wrong accept":          func(h http.Header) { h.Set("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOA=") },
		"no upgrade":            func(h http.Header) { h.Del("Upgrade") },
		"no connection upgrade": func(h http.Header) { h.Set("Connection", "keep-alive") },
		"unasked extension":     func(h http.Header) { h.Set("Sec-WebSocket-Extensions", "permessage-deflate") },
		"unasked subprotocol":   func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "chat") },
	} {
		h := ok.Clone()
		mutate(h)
		if checkUpgrade(h, key) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// writeResume asks the server to restart delivery after seq (Follow itself
// resumes with ?after= on each connection; servers also accept this frame).
func (c *wsConn) writeResume(seq uint64) error {
	return c.writeFrame(opText, append(strconv.AppendUint([]byte(`{"resume":`), seq, 10), '}'))
}
