//go:build linux

package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// HangupWatcher tells stream handlers when their client closed the
// connection, so a quiet stream releases its subscription at once rather
// than at the next failed write. One epoll instance and one goroutine serve
// every connection: a goroutine per connection parked in a read costs
// ~4 KiB of stack each, a third of the idle budget.
type HangupWatcher struct {
	epfd    int
	wakeR   int // read end of the pipe that ends the loop
	wakeW   int
	mu      sync.Mutex
	gen     uint32
	watches map[int32]watch // by fd
	closed  bool
	done    chan struct{}
	// closeErr is set by the loop before done closes.
	closeErr error
}

type watch struct {
	gen      uint32
	onHangup func()
	// readable: a WatchReadable watch, which stays registered (disarmed
	// by EPOLLONESHOT) after it fired, until its rearm or stop.
	readable bool
}

const (
	hangupEvents   = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR | syscall.EPOLLONESHOT
	readableEvents = syscall.EPOLLIN | hangupEvents
)

// NewHangupWatcher starts the watcher; Close stops it.
func NewHangupWatcher() (*HangupWatcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("hangup watcher: epoll: %w", err)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("hangup watcher: pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(p[0])
		_ = syscall.Close(p[1])
		return nil, fmt.Errorf("hangup watcher: epoll add: %w", err)
	}
	w := &HangupWatcher{epfd: epfd, wakeR: p[0], wakeW: p[1], watches: map[int32]watch{}, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// Watch calls onHangup once when the peer of conn closes its side (or the
// connection fails). stop must be called before conn is closed; after it
// returns, onHangup is not called any more. Connections that are not plain
// sockets (TLS, pipes) return errors.ErrUnsupported.
func (w *HangupWatcher) Watch(conn net.Conn, onHangup func()) (stop func(), err error) {
	fd, gen, err := w.add(conn, watch{onHangup: onHangup})
	if err != nil {
		return nil, err
	}
	return func() { w.unwatch(fd, gen) }, nil
}

// WatchReadable calls onReady once when conn has bytes to read, or its
// peer hung up; rearm asks for the next call, after the caller read all
// there was (level-triggered: bytes that arrived meanwhile fire at once).
// A WebSocket whose client is quiet then needs no goroutine parked in a
// read. stop is Watch's; rearm after stop returns net.ErrClosed.
func (w *HangupWatcher) WatchReadable(conn net.Conn, onReady func()) (rearm func() error, stop func(), err error) {
	fd, gen, err := w.add(conn, watch{onHangup: onReady, readable: true})
	if err != nil {
		return nil, nil, err
	}
	return func() error { return w.rearm(fd, gen) }, func() { w.unwatch(fd, gen) }, nil
}

func (w *HangupWatcher) add(conn net.Conn, wt watch) (int32, uint32, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, 0, fmt.Errorf("hangup watcher: %T: %w", conn, errors.ErrUnsupported)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("hangup watcher: %w", err)
	}
	var fd int32
	var addErr error
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, 0, fmt.Errorf("hangup watcher: %w", net.ErrClosed)
	}
	w.gen++
	wt.gen = w.gen
	if err := raw.Control(func(f uintptr) {
		fd = int32(f)
		// The generation rides in the event, so a hangup reported for a
		// closed fd is never taken for the new connection that reuses it.
		addErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), wt.event(fd))
	}); err != nil {
		return 0, 0, fmt.Errorf("hangup watcher: %w", err)
	}
	if addErr != nil {
		return 0, 0, fmt.Errorf("hangup watcher: epoll add: %w", addErr)
	}
	w.watches[fd] = wt
	return fd, wt.gen, nil
}

func (wt watch) event(fd int32) *syscall.EpollEvent {
	ev := syscall.EpollEvent{Events: hangupEvents, Fd: fd, Pad: int32(wt.gen)}
	if wt.readable {
		ev.Events = readableEvents
	}
	return &ev
}

// rearm re-enables a readable watch that fired.
func (w *HangupWatcher) rearm(fd int32, gen uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur, ok := w.watches[fd]
	if w.closed || !ok || cur.gen != gen {
		return fmt.Errorf("hangup watcher: rearm: %w", net.ErrClosed)
	}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, int(fd), cur.event(fd)); err != nil {
		return fmt.Errorf("hangup watcher: rearm: %w", err)
	}
	return nil
}

func (w *HangupWatcher) unwatch(fd int32, gen uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur, ok := w.watches[fd]; !ok || cur.gen != gen {
		return // already reported, or the fd was closed and reused
	}
	delete(w.watches, fd)
	if !w.closed {
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	}
}

func (w *HangupWatcher) loop() {
	defer close(w.done)
	defer func() {
		// Close set closed first, so nothing uses the fds any more.
		w.closeErr = errors.Join(syscall.Close(w.epfd), syscall.Close(w.wakeR), syscall.Close(w.wakeW))
	}()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // EBADF/EINVAL only: nothing left to watch with
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == w.wakeR {
				return
			}
			w.report(ev.Fd, uint32(ev.Pad))
		}
	}
}

// report runs the callback of a hung-up (or readable) fd. EPOLLONESHOT
// disarmed it, so the fd stays quiet until its stop removes it (or its
// rearm, for a readable watch).
func (w *HangupWatcher) report(fd int32, gen uint32) {
	w.mu.Lock()
	cur, ok := w.watches[fd]
	if ok && cur.gen == gen && !cur.readable {
		delete(w.watches, fd)
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	}
	w.mu.Unlock()
	if ok && cur.gen == gen {
		cur.onHangup()
	}
}

// Close stops the watcher; callbacks not yet reported never run.
func (w *HangupWatcher) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.watches = map[int32]watch{}
	w.mu.Unlock()
	_, _ = syscall.Write(w.wakeW, []byte{1})
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("hangup watcher: close: %w", ctx.Err())
	}
	if w.closeErr != nil {
		return fmt.Errorf("hangup watcher: close: %w", w.closeErr)
	}
	return nil
}
