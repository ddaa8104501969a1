//go:build unix

package bench

import (
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/sidestream/sidestream/sidecar/internal/rawio"
)

// sendWaitReader reads the answers of one request-at-a-time HTTP
// connection. A plain net.Conn read tries the socket first and, finding
// it empty (the answer cannot be there yet), parks on the poller and
// reads again: two read syscalls an answer. Here the request is written
// inside the read's poll callback, after Go reset the descriptor's
// readiness and before it waits, so the answer's arrival is never
// missed and the first read finds it: one write and one read a request.
// Both are raw system calls (see package rawio).
type sendWaitReader struct {
	c    net.Conn
	raw  syscall.RawConn // nil: plain writes and reads
	send []byte          // the request to write before the next read
	// reads counts read syscalls (those that found nothing included).
	reads uint64
}

func newSendWaitReader(c net.Conn) *sendWaitReader {
	return &sendWaitReader{c: c, raw: rawio.Conn(c)}
}

// request sets req to be written by the next Read; without a raw
// connection it is written now.
func (r *sendWaitReader) request(req []byte) error {
	if r.raw == nil {
		_, err := r.c.Write(req)
		return err
	}
	r.send = req
	return nil
}

// Read writes the pending request, if any, then waits for and reads the
// answer.
func (r *sendWaitReader) Read(p []byte) (int, error) {
	if r.raw == nil {
		return r.c.Read(p)
	}
	var (
		n    int
		rest []byte // what the socket did not take at once
		err  error
	)
	rerr := r.raw.Read(func(fd uintptr) bool {
		if len(r.send) > 0 {
			req := r.send
			r.send = nil
			w, werr := rawio.WriteFD(fd, req)
			switch {
			case werr == syscall.EAGAIN || (werr == nil && w < len(req)):
				rest = req[max(w, 0):]
				return true
			case werr != nil:
				err = fmt.Errorf("write request: %w", werr)
				return true
			}
			return false // the answer cannot be there yet: wait
		}
		r.reads++
		n, err = rawio.ReadFD(fd, p)
		return err != syscall.EAGAIN
	})
	switch {
	case rerr != nil:
		return 0, rerr
	case len(rest) > 0:
		// A full send buffer: finish through the poller, then read.
		if _, err := r.c.Write(rest); err != nil {
			return 0, fmt.Errorf("write request: %w", err)
		}
		return r.Read(p)
	case err != nil:
		return 0, err
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}
