//go:build unix

package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

const supported = true

// Read reads like c.Read: the socket first, the poller when it is empty.
// raw is Conn(c); nil reads through c.
func Read(c net.Conn, raw syscall.RawConn, p []byte) (int, error) {
	if raw == nil || len(p) == 0 {
		return c.Read(p)
	}
	var (
		n   int
		err error
	)
	if rerr := raw.Read(func(fd uintptr) bool {
		n, err = ReadFD(fd, p)
		return err != syscall.EAGAIN
	}); rerr != nil {
		return 0, rerr
	}
	switch {
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of b like c.Write, waiting on the poller while the
// send buffer is full. raw is Conn(c); nil writes through c.
func Write(c net.Conn, raw syscall.RawConn, b []byte) (int, error) {
	if raw == nil || len(b) == 0 {
		return c.Write(b)
	}
	var (
		done int
		err  error
	)
	if rerr := raw.Write(func(fd uintptr) bool {
		for done < len(b) {
			n, werr := WriteFD(fd, b[done:])
			if werr == syscall.EAGAIN {
				return false
			}
			if werr != nil {
				err = werr
				return true
			}
			done += n
		}
		return true
	}); rerr != nil {
		return done, rerr
	}
	if err != nil {
		return done, os.NewSyscallError("write", err)
	}
	return done, nil
}

// ReadFD reads from the non-blocking descriptor fd, retrying EINTR.
func ReadFD(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// WriteFD writes to the non-blocking descriptor fd, retrying EINTR.
func WriteFD(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}
