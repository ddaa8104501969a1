package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
)

// sseConn is one Server-Sent Events response read over a raw connection.
type sseConn struct {
	c    net.Conn
	body *bufio.Reader
}

// sseEvent is one dispatched event; Data is reused by the next read.
type sseEvent struct {
	ID    uint64
	HasID bool
	Type  []byte
	Data  []byte
}

// openSSE sends GET path and reads the response head; the body is then
// read with next. The connection closes when ctx ends.
func (e *env) openSSE(ctx context.Context, path string) (*sseConn, error) {
	c, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + e.host + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
	stop := closeOnDone(ctx, c)
	if _, err := c.Write([]byte(req)); err != nil {
		stop()
		c.Close()
		return nil, fmt.Errorf("sse request: %w", err)
	}
	br := bufio.NewReaderSize(c, 4<<10)
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
	s := &sseConn{c: c}
	if h.chunked {
		s.body = bufio.NewReaderSize(httputil.NewChunkedReader(br), 4<<10)
	} else {
		s.body = br
	}
	return s, nil
}

// next reads up to the next event, skipping comments and retry lines.
func (s *sseConn) next(ev *sseEvent) error {
	ev.HasID, ev.Type, ev.Data = false, ev.Type[:0], ev.Data[:0]
	hasData := false
	for range 1 << 20 {
		line, err := s.body.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("sse read: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasData || ev.HasID {
				return nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.ID, ev.HasID = parseUint(value)
		case "event":
			ev.Type = append(ev.Type, value...)
		case "data":
			if hasData {
				ev.Data = append(ev.Data, '\n')
			}
			ev.Data = append(ev.Data, value...)
			hasData = true
		}
	}
	return fmt.Errorf("%w: sse event too long", ErrProtocol)
}

// buffered reports whether more body bytes are already read: when not,
// the next event needs the network, so a fresh receive time is due.
func (s *sseConn) buffered() bool { return s.body.Buffered() > 0 }

func (s *sseConn) Close() error { return s.c.Close() }
