package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// sseConn is one Server-Sent Events response read over a raw connection
// (a thousand of them share the generator's CPU with the server, so the
// request and head are written and read by hand) and decoded by the
// product's one SSE parser, wire.SSEDecoder, in place.
type sseConn struct {
	c   net.Conn
	rc  *readCounter
	dec *wire.SSEDecoder
}

// openSSE sends GET path to host and reads the response head; the body
// is then read with next. The connection closes when ctx ends.
func (e *env) openSSE(ctx context.Context, host, path string) (*sseConn, error) {
	c, err := dial(ctx, host)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + e.auth + "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
	stop := closeOnDone(ctx, c)
	if _, err := c.Write([]byte(req)); err != nil {
		stop()
		c.Close()
		return nil, fmt.Errorf("sse request: %w", err)
	}
	rc := newReadCounter(c)
	br := bufio.NewReaderSize(rc, 4<<10)
	status, h, err := readHead(br)
	if err != nil {
		stop()
		c.Close()
		return nil, fmt.Errorf("sse %s: %w", path, err)
	}
	if status != http.StatusOK {
		stop()
		c.Close()
		return nil, fmt.Errorf("%w: sse %s: %d", ErrStatus, path, status)
	}
	body := br
	if h.chunked {
		body = bufio.NewReaderSize(chunkedBody(br), 4<<10)
	}
	return &sseConn{c: c, rc: rc, dec: wire.NewSSEDecoderBuffered(body, 1<<20)}, nil
}

// next reads the next event, skipping comments and retry lines; ev's
// slices are valid until the next call.
func (s *sseConn) next() (wire.SSEEvent, error) {
	ev, err := s.dec.Next()
	if err != nil {
		return ev, fmt.Errorf("sse read: %w", err)
	}
	return ev, nil
}

// buffered reports whether more body bytes are already read: when not,
// the next event needs the network.
func (s *sseConn) buffered() bool { return s.dec.Buffered() > 0 }

func (s *sseConn) Close() error { return s.c.Close() }
