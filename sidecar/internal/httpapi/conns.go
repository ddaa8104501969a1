package httpapi

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// trackingListener knows every open connection and whether a handler is
// using it, so Close can end idle keep-alive connections at once and
// force-close the rest when its deadline passes.
type trackingListener struct {
	net.Listener
	limits connLimits

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	perIP map[netip.Addr]int // with limits.perIP only

	closed    chan struct{} // closed by Close: ends a backoff and refusals
	closeOnce sync.Once
	refusing  chan struct{} // a slot per refusal in flight
	refusals  sync.WaitGroup
}

type trackedConn struct {
	net.Conn
	ln   *trackingListener
	busy atomic.Int32
	ip   netip.Addr // counted against limits.perIP (zero: not counted)
	// detached: an SSE stream took the socket over from Hertz (see
	// sseStream), so Hertz's Close after its handler is ignored and the
	// stream closes the socket itself with closeNow.
	detached atomic.Bool
	once     sync.Once
}

type connKey struct{}

func newTrackingListener(ln net.Listener, limits connLimits) *trackingListener {
	return &trackingListener{Listener: ln, limits: limits, conns: map[*trackedConn]struct{}{},
		perIP: map[netip.Addr]int{}, closed: make(chan struct{}), refusing: make(chan struct{}, maxRefusing)}
}

// Accept returns the next connection within the limits (connlimit.go).
func (l *trackingListener) Accept() (net.Conn, error) { return l.accept() }

// Close stops accepting; connections already accepted stay open.
func (l *trackingListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
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
	c.once.Do(func() { c.ln.forget(c) })
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
