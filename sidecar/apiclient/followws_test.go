package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	"github.com/sidestream/sidestream/sidecar/internal/wire"
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

// read returns the client's next frame, unmasked; an unmasked or
// fragmented frame is an error (the client sends neither).
func (p *wsPeer) read() (byte, string, error) {
	var h [14]byte
	if _, err := io.ReadFull(p.br, h[:2]); err != nil {
		return 0, "", err
	}
	if h[0]&0x80 == 0 || h[1]&0x80 == 0 {
		return 0, "", fmt.Errorf("client frame % x: not final or not masked", h[:2])
	}
	n, hdr := int(h[1]&0x7f), 2
	switch n {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	if _, err := io.ReadFull(p.br, h[2:hdr+4]); err != nil {
		return 0, "", err
	}
	switch hdr {
	case 4:
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 10:
		n = int(binary.BigEndian.Uint64(h[2:10]))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return 0, "", err
	}
	for i := range b {
		b[i] ^= h[hdr+i&3]
	}
	return h[0] & 0x0f, string(b), nil
}

// WebSocket opcodes the test peer sends.
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// srvFrame is an unmasked server frame; fin=false leaves it open.
func srvFrame(fin bool, op byte, p string) []byte {
	b := wire.AppendFrame(nil, op, []byte(p), nil)
	if !fin {
		b[0] &^= 0x80
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

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
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
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
		{"event over the limit", srvFrame(true, opText, env(1)+strings.Repeat(" ", 100)), nil, "0x8 \"\\x03\\xf1\""},
		{"reserved opcode", srvFrame(true, 0x3, "x"), nil, "0x8 \"\\x03\\xeabad opcode 3\""},
		{"masked server frame", wire.AppendFrame(nil, opText, []byte(env(1)), &[4]byte{1, 2, 3, 4}), nil, "0x8 \"\\x03\\xeabad MASK\""},
		{"invalid UTF-8 text", srvFrame(true, opText, "{\"a\xff\":1}"), nil, "0x8 \"\\x03\\xeftext message is not valid UTF-8\""},
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
