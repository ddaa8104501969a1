package httpapi

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// tryWriter returns w as a streamhttp.TryWriter when its socket can be
// written without waiting (TCP, Unix), else nil (TLS: the stream keeps a
// goroutine of its own).
func (w *rawChunked) tryWriter() streamhttp.TryWriter {
	switch w.conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := w.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	w.raw = rc
	return w
}

// TryWriteFrames is WriteFrames that writes only what the socket takes
// now; the rest, if any, waits for FinishWrite.
func (w *rawChunked) TryWriteFrames(frames [][]byte) (int, bool, error) {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if n == 0 || w.err != nil {
		return 0, w.err == nil, w.err
	}
	if w.done || w.restp != nil {
		return 0, false, errors.New("sse: write after the response ended or before the last one finished")
	}
	pp := partsPool.Get().(*[][]byte)
	parts := w.chunk((*pp)[:0], n, frames)
	w.armDeadline()
	rest, err := w.tryWritev(parts)
	if err != nil {
		w.err = fmt.Errorf("sse write: %w", err)
	}
	if err != nil || len(rest) == 0 {
		clear(parts)
		*pp = parts[:0]
		partsPool.Put(pp)
		return n, err == nil, w.err
	}
	w.rest, w.restp = rest, pp
	return n, false, nil
}

// FinishWrite writes what TryWriteFrames left, within the write deadline.
func (w *rawChunked) FinishWrite() error {
	if w.restp == nil {
		return w.err
	}
	err := w.writev(w.rest)
	pp := w.restp
	clear((*pp)[:cap(*pp)])
	*pp = (*pp)[:0]
	partsPool.Put(pp)
	w.rest, w.restp = nil, nil
	if err != nil {
		w.err = err
	}
	return err
}

// iovPool holds the iovec arrays of tryWritev (an idle stream keeps none).
var iovPool = sync.Pool{New: func() any { v := make([]unix.Iovec, 0, 64); return &v }}

// maxIov is the most iovecs one writev takes (IOV_MAX on Linux).
const maxIov = 1024

// tryWritev writevs parts on the non-blocking socket until all went out
// or the socket is full (EAGAIN), and returns what is left.
func (w *rawChunked) tryWritev(parts [][]byte) ([][]byte, error) {
	vp := iovPool.Get().(*[]unix.Iovec)
	defer iovPool.Put(vp)
	var werr error
	err := w.raw.Write(func(fd uintptr) bool {
		for len(parts) > 0 {
			iov := (*vp)[:0]
			for _, p := range parts {
				if len(iov) == maxIov {
					break
				}
				if len(p) > 0 {
					v := unix.Iovec{Base: &p[0]}
					v.SetLen(len(p))
					iov = append(iov, v)
				}
			}
			*vp = iov
			if len(iov) == 0 {
				parts = parts[:0]
				break
			}
			n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			clear(iov) // keep no reference to the caller's bytes
			switch errno {
			case 0:
				parts = consume(parts, int(n))
				continue
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return true
			default:
				werr = errno
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return parts, err
}

// consume drops the first n bytes of parts.
func consume(parts [][]byte, n int) [][]byte {
	for len(parts) > 0 && (n > 0 || len(parts[0]) == 0) {
		if l := len(parts[0]); n >= l {
			n -= l
			parts = parts[1:]
			continue
		}
		parts[0] = parts[0][n:]
		n = 0
	}
	return parts
}
