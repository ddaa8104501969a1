//go:build linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sidestream/sidestream/sidecar/internal/rawio"
)

// Subscribers that only receive are read by a few epoll loops, not a
// goroutine each. A thousand reader goroutines made runnable by one
// publish overflow the scheduler's local run queue (256), the rest wait
// in the global one, and the time a reader takes for a delivery lagged
// its arrival by a scheduling round. A loop reads the connections one
// epoll_wait reports ready in turn and decodes each in place.
//
// The receive time is still taken per network read, after it: one time
// for the whole batch, taken when epoll_wait returns, came before bytes
// that arrived while the loop worked through the batch and made some
// deliveries seem faster than they were (latencies of 0 and below).
//
// Level-triggered: each ready connection gets one read a readiness
// (readCounter.spent), so a decoder wanting more is told errWouldBlock
// without the read that would find nothing, which edge-triggering needs
// before every wait; what is left is reported again by the next wait.

// The epoll set itself waits in Go's poller (an epoll descriptor is
// readable while it has ready entries): a loop calls epoll_wait only
// when it will not block, so no thread sleeps in a system call and no P
// is handed off for it, which cost the track scenario a third more
// generator CPU per publish when each loop blocked in epoll_wait.

// pollLoops is a pool's loops, started with its first subscriber.
type pollLoops struct {
	loops []*pollLoop
	next  int
	err   error // the loops could not start: goroutines read
}

// loopCount: a few loops, never more than the Ps that would run them.
func loopCount() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// pollLoop is one epoll set and the goroutine waiting on it.
type pollLoop struct {
	p      *pool
	ep     *os.File        // the epoll set, in Go's poller
	raw    syscall.RawConn // ep's descriptor
	mu     sync.Mutex
	subs   []*reader // by the id in the epoll event; nil once finished
	closed bool      // the loop ended: no more subscribers
}

// pollFrom is the fewest subscribers a pool polls. Below it a goroutine
// each costs less: the run queue holds them all, and a loop would add an
// epoll_wait to each wake-up and a second epoll set to each packet (track
// with 64 WebSocket subscribers: generator CPU per publish 24-25 µs with
// goroutines, 28-32 µs polled; BENCHMARKS.md).
const pollFrom = 256

// poll hands r to one of p's loops; false when it cannot be polled.
func (p *pool) poll(r *reader) bool {
	rc := r.sub.counter()
	if p.size < pollFrom || rc == nil || rc.raw == nil {
		return false
	}
	l := p.loop()
	if l == nil {
		return false
	}
	rc.poll = true
	// What came with the response head is decoded now: no readiness
	// would report it.
	if finished, err := r.c.drain(r.sub, &r.d, r.limit, r.measure); finished {
		r.finish(p, p.quiet(err))
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		r.finish(p, nil)
		return true
	}
	id := len(l.subs)
	r.pollID = id
	l.subs = append(l.subs, r)
	if err := l.ctl(rc.raw, unix.EPOLL_CTL_ADD, id); err != nil {
		l.subs[id] = nil
		r.finish(p, p.quiet(fmt.Errorf("poll subscriber: %w", err)))
	}
	return true
}

// ctl adds (with id) or deletes the connection of raw in l's set.
func (l *pollLoop) ctl(raw syscall.RawConn, op, id int) error {
	var err error
	cerr := l.raw.Control(func(epfd uintptr) {
		cerr := raw.Control(func(fd uintptr) {
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(id)}
			err = unix.EpollCtl(int(epfd), op, int(fd), &ev)
		})
		err = errors.Join(err, cerr)
	})
	return errors.Join(err, cerr)
}

// quiet drops an error that only says the pool's context ended.
func (p *pool) quiet(err error) error {
	if p.ctx.Err() != nil {
		return nil
	}
	return err
}

// loop returns the next loop round-robin, starting them on first use.
func (p *pool) loop() *pollLoop {
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := &p.loops
	if ls.loops == nil && ls.err == nil {
		for range loopCount() {
			l, err := newPollLoop(p)
			if err != nil {
				ls.err = err
				break
			}
			ls.loops = append(ls.loops, l)
			p.wg.Add(1)
			go l.run(p.ctx)
		}
	}
	if len(ls.loops) == 0 {
		return nil
	}
	ls.next++
	return ls.loops[ls.next%len(ls.loops)]
}

// newPollLoop makes an epoll set Go's poller waits on.
func newPollLoop(p *pool) (*pollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll set: %w", err)
	}
	l := &pollLoop{p: p, ep: os.NewFile(uintptr(epfd), "epoll")}
	if l.raw, err = l.ep.SyscallConn(); err != nil {
		_ = l.ep.Close()
		return nil, fmt.Errorf("epoll set: %w", err)
	}
	return l, nil
}

// run waits for readiness and decodes what is ready until ctx ends.
//
// It stays in one RawConn.Read: Go resets the descriptor's readiness
// when a Read begins, so each new Read would need an epoll_wait finding
// nothing before it could wait. Within one, a readiness that came while
// a batch was decoded is kept, and the loop waits right after a batch
// unless a read filled its buffer (the socket may hold more, and a
// level-triggered entry still ready raises no new readiness).
func (l *pollLoop) run(ctx context.Context) {
	defer l.p.wg.Done()
	defer l.stop()
	stop := context.AfterFunc(ctx, func() { _ = l.ep.Close() }) // ends the wait
	defer stop()
	events := make([]unix.EpollEvent, 512)
	ready := make([]*reader, 0, len(events))
	var err error
	rerr := l.raw.Read(func(epfd uintptr) bool {
		for ctx.Err() == nil {
			var n int
			n, err = unix.EpollWait(int(epfd), events, 0)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				return true
			case n == 0:
				return false
			}
			ready = ready[:0]
			l.mu.Lock()
			for _, ev := range events[:n] {
				if id := int(ev.Fd); id < len(l.subs) && l.subs[id] != nil {
					ready = append(ready, l.subs[id])
				}
			}
			l.mu.Unlock()
			more := n == len(events)
			for _, r := range ready {
				more = l.serve(r) || more
			}
			if !more {
				return false
			}
		}
		return true
	})
	if (rerr != nil || err != nil) && ctx.Err() == nil {
		l.p.e.fail(fmt.Errorf("epoll_wait: %w", errors.Join(rerr, err)))
	}
}

// serve decodes what r's connection has, reading it once; more says
// the read filled the buffer: the socket may hold more.
func (l *pollLoop) serve(r *reader) (more bool) {
	rc := r.sub.counter()
	rc.spent, rc.full = false, false
	finished, err := r.c.drain(r.sub, &r.d, r.limit, r.measure)
	if !finished {
		return rc.full
	}
	_ = l.ctl(rc.raw, unix.EPOLL_CTL_DEL, 0)
	l.mu.Lock()
	if r.pollID < len(l.subs) {
		l.subs[r.pollID] = nil
	}
	l.mu.Unlock()
	r.finish(l.p, l.p.quiet(err))
	return false
}

// stop ends the subscribers still read, as a reader goroutine does when
// its context ends, and closes the epoll set.
func (l *pollLoop) stop() {
	l.mu.Lock()
	subs := l.subs
	l.subs, l.closed = nil, true
	l.mu.Unlock()
	for _, r := range subs {
		if r != nil {
			r.finish(l.p, nil)
		}
	}
	_ = l.ep.Close()
}

// chunkedBody reads a chunked SSE body in a way a poll can resume.
func chunkedBody(br *bufio.Reader) io.Reader { return &dechunk{br: br} }

// readNow reads what the socket has, once, without waiting: nothing is
// errWouldBlock, the peer's close io.EOF.
func readNow(raw syscall.RawConn, p []byte) (int, error) {
	var (
		n   int
		err error
	)
	if rerr := raw.Read(func(fd uintptr) bool {
		n, err = rawio.ReadFD(fd, p)
		return true
	}); rerr != nil {
		return 0, rerr
	}
	switch {
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
