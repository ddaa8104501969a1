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
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidestream/sidestream/sidecar/internal/rawio"
)

// Subscribers that only receive are read by a few epoll loops, not a
// goroutine each. A thousand reader goroutines made runnable by one
// publish overflow the scheduler's local run queue (256), the rest wait
// in the global one, and the time a reader takes for a delivery lagged
// its arrival by a scheduling round. A loop takes one time for all the
// connections one epoll_wait reports ready and decodes each in place.
//
// Level-triggered: each ready connection gets one read a readiness
// (readCounter.spent), so a decoder wanting more is told errWouldBlock
// without the read that would find nothing, which edge-triggering needs
// before every wait; what is left is reported again by the next wait.

// pollWait bounds one epoll_wait, so a loop sees its context end (the
// connections it would have reported are closed by then).
const pollWait = 20 * time.Millisecond

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
	epfd   int
	mu     sync.Mutex
	subs   []*reader // by the id in the epoll event; nil once finished
	closed bool      // the loop ended: no more subscribers
}

// poll hands r to one of p's loops; false when it cannot be polled.
func (p *pool) poll(r *reader) bool {
	rc := r.sub.counter()
	if rc == nil || rc.raw == nil {
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
	var err error
	if cerr := rc.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(id)}
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil || err != nil {
		l.subs[id] = nil
		r.finish(p, p.quiet(fmt.Errorf("poll subscriber: %w", errors.Join(cerr, err))))
	}
	return true
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
			epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			if err != nil {
				ls.err = err
				break
			}
			l := &pollLoop{p: p, epfd: epfd}
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

// run waits for readiness and decodes what is ready until ctx ends.
func (l *pollLoop) run(ctx context.Context) {
	defer l.p.wg.Done()
	defer l.stop()
	events := make([]unix.EpollEvent, 512)
	ready := make([]*reader, 0, len(events))
	for ctx.Err() == nil {
		n, err := unix.EpollWait(l.epfd, events, int(pollWait/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.p.e.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		if n == 0 {
			continue
		}
		now := time.Now() // one receive time for the batch
		ready = ready[:0]
		l.mu.Lock()
		for _, ev := range events[:n] {
			if id := int(ev.Fd); id < len(l.subs) && l.subs[id] != nil {
				ready = append(ready, l.subs[id])
			}
		}
		l.mu.Unlock()
		for _, r := range ready {
			l.serve(r, now)
		}
	}
}

// serve decodes what r's connection has, reading it once.
func (l *pollLoop) serve(r *reader, now time.Time) {
	rc := r.sub.counter()
	rc.spent = false
	r.d.now = now
	finished, err := r.c.drain(r.sub, &r.d, r.limit, r.measure)
	if !finished {
		return
	}
	_ = rc.raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	l.mu.Lock()
	if r.pollID < len(l.subs) {
		l.subs[r.pollID] = nil
	}
	l.mu.Unlock()
	r.finish(l.p, l.p.quiet(err))
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
	_ = unix.Close(l.epfd)
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
