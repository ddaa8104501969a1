//go:build !linux

package bench

import (
	"bufio"
	"io"
	"net/http/httputil"
	"syscall"
)

// Without epoll each subscriber is read on a goroutine of its own.
type pollLoops struct{}

func (p *pool) poll(*reader) bool { return false }

func chunkedBody(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }

// readNow is never called: no connection is polled here.
func readNow(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }
