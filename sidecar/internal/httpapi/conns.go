package httpapi

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// trackingListener knows every open connection and whether a handler is
// using it, so Close can end idle keep-alive connections at once and
// force-close the rest when its deadline passes.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	ln   *trackingListener
	busy atomic.Int32
	// detached: an SSE stream took the socket over from Hertz (see
	// sseStream), so Hertz's Close after its handler is ignored and the
	// stream closes the socket itself with closeNow.
	detached atomic.Bool
	once     sync.Once
}

type connKey struct{}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, ln: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// onAccept puts the connection into the handlers' context.
func (l *trackingListener) onAccept(c net.Conn) context.Context {
	return context.WithValue(context.Background(), connKey{}, c)
}

// Write passes b on, with an answer Hertz wrote on its own at its end
// given the JSON error body (earlyErrorJSON): its n counts b's bytes,
// which is what Hertz's buffer advances by.
func (c *trackedConn) Write(b []byte) (int, error) {
	if out, ok := earlyErrorJSON(b); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	if c.detached.Load() {
		return nil
	}
	return c.closeNow()
}

// closeNow closes the socket, detached or not.
func (c *trackedConn) closeNow() error {
	c.once.Do(func() {
		c.ln.mu.Lock()
		delete(c.ln.conns, c)
		c.ln.mu.Unlock()
	})
	return c.Conn.Close()
}

func (l *trackingListener) expireIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.busy.Load() == 0 {
			_ = c.SetReadDeadline(time.Now())
		}
	}
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	all := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		all = append(all, c)
	}
	l.mu.Unlock()
	for _, c := range all {
		_ = c.closeNow()
	}
}

// markBusy flags the request's connection as in use until the returned
// func runs.
func markBusy(ctx context.Context) func() {
	tc, ok := ctx.Value(connKey{}).(*trackedConn)
	if !ok {
		return func() {}
	}
	tc.busy.Add(1)
	return func() { tc.busy.Add(-1) }
}
