package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// dechunk reads an HTTP/1.1 chunked body from br. Unlike
// httputil.NewChunkedReader, whose first error sticks, it can be read
// again after a read error (a non-blocking connection's "nothing yet"):
// a chunk header is consumed only once whole, data as it comes.
// Trailers are not read: the generator's streams never end with them.
type dechunk struct {
	br   *bufio.Reader
	left int64 // data bytes left in the current chunk
	crlf bool  // the CRLF after a chunk's data is still to come
	eof  bool  // the last chunk was read
}

func (c *dechunk) Read(p []byte) (int, error) {
	for range 1 << 10 {
		switch {
		case c.eof:
			return 0, io.EOF
		case c.crlf:
			b, err := c.br.Peek(2)
			if err != nil {
				return 0, unexpectedEOF(err)
			}
			if b[0] != '\r' || b[1] != '\n' {
				return 0, fmt.Errorf("%w: chunk data not followed by CRLF", ErrProtocol)
			}
			_, _ = c.br.Discard(2)
			c.crlf = false
		case c.left > 0:
			n, err := c.br.Read(p[:min(int64(len(p)), c.left)])
			c.left -= int64(n)
			c.crlf = c.left == 0
			if n > 0 {
				return n, nil
			}
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, unexpectedEOF(err)
		default:
			if err := c.header(); err != nil {
				return 0, err
			}
		}
	}
	return 0, fmt.Errorf("%w: too many empty chunks", ErrProtocol)
}

// header reads a chunk-size line ("1a;ext\r\n") once it is whole.
func (c *dechunk) header() error {
	line, err := peekLine(c.br)
	if err != nil {
		return unexpectedEOF(err)
	}
	size := bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(size, ';'); i >= 0 {
		size = size[:i]
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%w: chunk size %.20q", ErrProtocol, line)
	}
	_, _ = c.br.Discard(len(line))
	c.left, c.eof = n, n == 0
	return nil
}

// peekLine returns the buffered line up to and including its LF without
// consuming it, filling br as needed.
func peekLine(br *bufio.Reader) ([]byte, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return b[:i+1], nil
		}
		if len(b) == br.Size() {
			return nil, fmt.Errorf("%w: chunk header over %d bytes", ErrProtocol, len(b))
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, err
		}
	}
}

// unexpectedEOF: the body ended before its last chunk.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
