//go:build linux

package streamhttp

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
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
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

func newWatcher(t *testing.T) *HangupWatcher {
	t.Helper()
	w, err := NewHangupWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return w
}

func waitCalled(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: hangup never reported", what)
	}
}

// A client closing its end is reported once; a stopped watch is not, and
// data from the client is not a hangup.
func TestHangupWatcher(t *testing.T) {
	t.Parallel()
	w := newWatcher(t)

	stoppedSrv, stoppedCli := tcpPair(t)
	stoppedCalls := make(chan struct{}, 2)
	stop, err := w.Watch(stoppedSrv, func() { stoppedCalls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	stop()

	srv, cli := tcpPair(t)
	calls := make(chan struct{}, 2)
	stop2, err := w.Watch(srv, func() { calls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	if _, err := cli.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = stoppedCli.Close()
	_ = cli.Close()
	waitCalled(t, calls, "watched connection")
	stop2() // after the report: harmless, and twice is fine too

	// The stopped connection's peer closed before the watched one: had its
	// hangup been reported, it would have been by now.
	select {
	case <-stoppedCalls:
		t.Fatal("hangup reported for a stopped watch")
	default:
	}
	if len(calls) != 0 {
		t.Fatal("hangup reported twice")
	}
}

// A peer that is already gone when the watch starts is reported too.
func TestHangupWatcherAlreadyGone(t *testing.T) {
	t.Parallel()
	w := newWatcher(t)
	srv, cli := tcpPair(t)
	_ = cli.Close()
	calls := make(chan struct{}, 1)
	stop, err := w.Watch(srv, func() { calls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	waitCalled(t, calls, "closed before Watch")
}

func TestHangupWatcherRefuses(t *testing.T) {
	t.Parallel()
	w := newWatcher(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := w.Watch(a, func() {}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Watch(net.Pipe) = %v, want ErrUnsupported", err)
	}
	srv, _ := tcpPair(t)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Watch(srv, func() {}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Watch after Close = %v, want net.ErrClosed", err)
	}
}
