package httpapi

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// Reasons a connection is refused, as Deps.OnConnRefused is told them.
const (
	// RefusedMaxConns: the server holds Options.MaxConns connections.
	RefusedMaxConns = "max_connections"
	// RefusedMaxConnsPerIP: the client's address holds
	// Options.MaxConnsPerIP connections.
	RefusedMaxConnsPerIP = "max_connections_per_ip"
	// RefusedAcceptFailed: accept itself failed (out of file
	// descriptors, of memory); the listener backs off and goes on.
	RefusedAcceptFailed = "accept_failed"
)

// Backoff of the accept loop after a failed accept (as net/http's): a
// process out of file descriptors must not spin on a connection the
// kernel keeps offering, and must not exit either.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// Refusing answers an extra connection with a 503 rather than a bare
// close, within refuseTimeout, at most maxRefusing at once: each one
// still holds a file descriptor until it is answered, so beyond that
// they are closed at once.
const (
	refuseTimeout = 500 * time.Millisecond
	maxRefusing   = 32
)

// connLimits bounds the connections a trackingListener hands out.
type connLimits struct {
	total, perIP int // 0: unlimited
	onRefuse     func(reason string)
	onAcceptErr  func(err error, retryIn time.Duration)
}

// accept is the listener's accept loop: temporary failures back off and
// retry, connections beyond the limits are refused, and only a closed
// (or broken) listener ends it.
func (l *trackingListener) accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !acceptRetryable(err) {
				return nil, err
			}
			delay = min(max(2*delay, acceptRetryMin), acceptRetryMax)
			l.refused(RefusedAcceptFailed)
			if l.limits.onAcceptErr != nil {
				l.limits.onAcceptErr(err, delay)
			}
			if !l.sleep(delay) {
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		if tc := l.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// acceptRetryable reports whether an accept error is one the listener
// outlives: out of file descriptors or memory, or a connection that
// died before it was accepted.
func acceptRetryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// sleep waits d, or until the listener is closed (false).
func (l *trackingListener) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.closed:
		return false
	}
}

// admit tracks c, or refuses it (nil) when a limit is reached.
func (l *trackingListener) admit(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, ln: l}
	if l.limits.perIP > 0 {
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			tc.ip = a.AddrPort().Addr().Unmap()
		}
	}
	l.mu.Lock()
	reason := ""
	switch {
	case l.limits.total > 0 && len(l.conns) >= l.limits.total:
		reason = RefusedMaxConns
	case l.limits.perIP > 0 && tc.ip.IsValid() && l.perIP[tc.ip] >= l.limits.perIP:
		reason = RefusedMaxConnsPerIP
	default:
		l.conns[tc] = struct{}{}
		if tc.ip.IsValid() {
			l.perIP[tc.ip]++
		}
	}
	l.mu.Unlock()
	if reason == "" {
		return tc
	}
	l.refused(reason)
	l.refuse(c, reason)
	return nil
}

// forget drops tc from the counts once it is closed.
func (l *trackingListener) forget(tc *trackedConn) {
	l.mu.Lock()
	delete(l.conns, tc)
	if tc.ip.IsValid() {
		if n := l.perIP[tc.ip]; n <= 1 {
			delete(l.perIP, tc.ip)
		} else {
			l.perIP[tc.ip] = n - 1
		}
	}
	l.mu.Unlock()
}

func (l *trackingListener) refused(reason string) {
	if l.limits.onRefuse != nil {
		l.limits.onRefuse(reason)
	}
}

// refusedAnswer is what a refused connection is told: 503 with
// Retry-After and the error body, and the connection closes.
var refusedAnswer = func() map[string][]byte {
	out := map[string][]byte{}
	for reason, msg := range map[string]string{
		RefusedMaxConns:      "the server holds as many connections as it is configured for; retry later",
		RefusedMaxConnsPerIP: "this client address holds as many connections as the server allows one address; retry later",
	} {
		body := api.NewError("too_many_connections", msg).Encode()
		out[reason] = append([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: "+jsonContentType+
			"\r\nRetry-After: "+api.RetryAfter+"\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	}
	return out
}()

// refuse answers c with the 503 and closes it, without holding up the
// accept loop. It writes first and then reads what the client sent
// until the client closes (or refuseTimeout), so the close does not
// reset a connection with an unread request and lose the answer.
func (l *trackingListener) refuse(c net.Conn, reason string) {
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	l.refusals.Add(1)
	go func() {
		defer l.refusals.Done()
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseTimeout))
		if _, err := c.Write(refusedAnswer[reason]); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		var buf [512]byte
		for {
			select {
			case <-l.closed:
				return
			default:
			}
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}()
}

// waitRefusals waits for the refusals in flight; each ends within
// refuseTimeout.
func (l *trackingListener) waitRefusals() { l.refusals.Wait() }

// acceptErrLogger logs a failing accept at the start of a failure
// streak and then about once a second, not at every retry.
func acceptErrLogger(log *slog.Logger) func(error, time.Duration) {
	return func(err error, retryIn time.Duration) {
		if retryIn == acceptRetryMin || retryIn == acceptRetryMax {
			log.Warn("accept failed; retrying (connections wait in the backlog)", "err", err, "retry_in", retryIn)
		}
	}
}

// DefaultMaxConns is the connection limit derived from the open-file
// limit: what is left after a reserve for the store, the journal, the
// plugins' pipes and sockets, NATS and the refusals in flight (128 plus
// an eighth), so connections never take the descriptors the rest of the
// process needs. Without a known limit it is 16,384.
func DefaultMaxConns() int {
	n := openFileLimit()
	if n == 0 {
		return 16384
	}
	reserve := 128 + n/8
	if n <= reserve+16 {
		return 16
	}
	return int(min(n-reserve, 1<<30))
}
