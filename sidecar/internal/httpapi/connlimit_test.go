package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// refusals counts OnConnRefused calls by reason.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[reason]++
}

func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// dialFrom opens a connection to e's server from the loopback address
// local (the whole 127/8 reaches the loopback interface).
func dialFrom(t *testing.T, e *env, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitOpenConns waits (bounded) until the server counts n open
// connections: it sees a client's close only when its read fails.
func waitOpenConns(t *testing.T, e *env, n int) {
	t.Helper()
	for i := 0; ; i++ {
		e.srv.ln.mu.Lock()
		open := len(e.srv.ln.conns)
		e.srv.ln.mu.Unlock()
		if open == n {
			return
		}
		if i == 500 {
			t.Fatalf("the server holds %d connections, want %d", open, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get sends GET path on c and reads the answer.
func get(t *testing.T, c net.Conn, path string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// A connection beyond the total or the per-address limit is answered
// 503 with Retry-After and the error body and closed, counted by reason;
// the connections within the limit keep working, and once one closes a
// new one is served.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		total, perIP int
		held         []string // addresses of connections held open first
		extra        string   // the address of the one refused
		reason       string
	}{
		{"total", 3, 0, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, "127.0.0.4", RefusedMaxConns},
		{"per address", 10, 2, []string{"127.0.0.1", "127.0.0.1", "127.0.0.2"}, "127.0.0.1", RefusedMaxConnsPerIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := &refusals{n: map[string]int{}}
			e := newEnvDeps(t, Options{MaxConns: tt.total, MaxConnsPerIP: tt.perIP}, slog.New(slog.DiscardHandler),
				func(d *Deps) { d.OnConnRefused = got.add })
			e.http.CloseIdleConnections() // waitUp's connection would count
			waitOpenConns(t, e, 0)
			held := make([]net.Conn, len(tt.held))
			for i, a := range tt.held {
				held[i] = dialFrom(t, e, a)
				if resp := get(t, held[i], "/healthz"); resp.StatusCode != http.StatusOK {
					t.Fatalf("held connection %d: %d", i, resp.StatusCode)
				}
			}
			resp := get(t, dialFrom(t, e, tt.extra), "/healthz")
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("extra connection: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if eb := errorBody(t, resp); eb.Error.Code != "too_many_connections" {
				t.Fatalf("code %q", eb.Error.Code)
			}
			if n := got.get(tt.reason); n != 1 {
				t.Fatalf("refusals counted as %s: %d, want 1 (%v)", tt.reason, n, got.n)
			}
			for i, c := range held {
				if resp := get(t, c, "/healthz"); resp.StatusCode != http.StatusOK {
					t.Fatalf("held connection %d after the refusal: %d", i, resp.StatusCode)
				}
			}
			held[0].Close()
			waitOpenConns(t, e, len(held)-1)
			if resp := get(t, dialFrom(t, e, tt.held[0]), "/healthz"); resp.StatusCode != http.StatusOK {
				t.Fatalf("new connection after one closed: %d", resp.StatusCode)
			}
		})
	}
}

// flakyListener fails its first accepts with errs, then accepts.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// Running out of file descriptors fails accept; the listener backs off
// and accepts the waiting connection afterwards instead of ending the
// server, and counts each failure. Any other error ends it.
func TestAcceptBacksOffOnTemporaryErrors(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	fl := &flakyListener{Listener: raw, errs: []error{emfile, emfile, syscall.ENFILE}}
	got := &refusals{n: map[string]int{}}
	ln := newTrackingListener(fl, connLimits{onRefuse: got.add})
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", raw.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept after EMFILE: %v", err)
	}
	c.Close()
	if n := got.get(RefusedAcceptFailed); n != 3 {
		t.Fatalf("failed accepts counted: %d, want 3", n)
	}

	fl.mu.Lock()
	fl.errs = []error{errors.New("broken")}
	fl.mu.Unlock()
	if _, err := ln.Accept(); err == nil || err.Error() != "broken" {
		t.Fatalf("accept with a lasting error: %v, want it returned", err)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after Close: %v", err)
	}
}
