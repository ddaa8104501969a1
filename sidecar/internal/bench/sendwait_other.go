//go:build !unix

package bench

import "net"

// sendWaitReader writes and reads through the net.Conn where raw
// descriptors are not at hand (see sendwait_unix.go).
type sendWaitReader struct {
	c     net.Conn
	reads uint64
}

func newSendWaitReader(c net.Conn) *sendWaitReader { return &sendWaitReader{c: c} }

func (r *sendWaitReader) request(req []byte) error {
	_, err := r.c.Write(req)
	return err
}

func (r *sendWaitReader) Read(p []byte) (int, error) {
	r.reads++
	return r.c.Read(p)
}
