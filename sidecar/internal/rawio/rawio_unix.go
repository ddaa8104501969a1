//go:build unix

package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
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
