package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// Errors of the wire clients.
var (
	// ErrStatus is an unexpected HTTP status.
	ErrStatus = errors.New("unexpected status")
	// ErrProtocol is a response the raw clients cannot read.
	ErrProtocol = errors.New("protocol error")
)

// dialTimeout bounds one TCP connect.
const dialTimeout = 10 * time.Second

// dial opens a TCP connection to host (host:port).
func dial(ctx context.Context, host string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", host, err)
	}
	return c, nil
}

// closeOnDone closes c when ctx ends, which unblocks its reader; the
// returned func stops the watch.
func closeOnDone(ctx context.Context, c io.Closer) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = c.Close() })
}

// httpConn is one keep-alive HTTP/1.1 connection issuing requests one at
// a time; requests are prebuilt bytes, responses need Content-Length.
type httpConn struct {
	c    net.Conn
	sw   *sendWaitReader // under br: writes each request, reads its answer
	br   *bufio.Reader
	body []byte
}

func (e *env) openHTTP(ctx context.Context) (*httpConn, error) {
	c, err := dial(ctx, e.host)
	if err != nil {
		return nil, err
	}
	sw := newSendWaitReader(c)
	return &httpConn{c: c, sw: sw, br: bufio.NewReaderSize(sw, 8<<10)}, nil
}

// request builds a GET or POST request with no body.
func (e *env) request(method, target string) []byte {
	return []byte(method + " " + target + " HTTP/1.1\r\nHost: " + e.host + "\r\n" + e.auth + "Content-Length: 0\r\n\r\n")
}

// jsonRequest builds a request with a JSON body.
func (e *env) jsonRequest(method, target, body string) []byte {
	return []byte(method + " " + target + " HTTP/1.1\r\nHost: " + e.host + "\r\n" + e.auth +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// do sends req and reads the response; body is valid until the next do.
func (h *httpConn) do(req []byte) (status int, body []byte, err error) {
	// The request goes out with the read of its answer (sendWaitReader)
	// unless bytes of an earlier answer are still buffered, which the
	// read would not reach.
	if h.br.Buffered() > 0 {
		if _, err := h.c.Write(req); err != nil {
			return 0, nil, fmt.Errorf("write request: %w", err)
		}
	} else if err := h.sw.request(req); err != nil {
		return 0, nil, fmt.Errorf("write request: %w", err)
	}
	status, hdr, err := readHead(h.br)
	if err != nil {
		return 0, nil, err
	}
	if hdr.chunked || hdr.length < 0 {
		return status, nil, fmt.Errorf("%w: response without Content-Length", ErrProtocol)
	}
	if cap(h.body) < hdr.length {
		h.body = make([]byte, hdr.length)
	}
	h.body = h.body[:hdr.length]
	if _, err := io.ReadFull(h.br, h.body); err != nil {
		return status, nil, fmt.Errorf("read body: %w", err)
	}
	return status, h.body, nil
}

func (h *httpConn) Close() error { return h.c.Close() }

// head is what the raw clients need of response headers.
type head struct {
	length  int // -1 when absent
	chunked bool
	accept  string // Sec-WebSocket-Accept
}

var (
	hdrContentLength = []byte("content-length:")
	hdrTransferEnc   = []byte("transfer-encoding:")
	hdrWSAccept      = []byte("sec-websocket-accept:")
)

// readHead reads a status line and headers.
func readHead(br *bufio.Reader) (int, head, error) {
	h := head{length: -1}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, h, fmt.Errorf("read status: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, h, fmt.Errorf("%w: status line %q", ErrProtocol, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, h, fmt.Errorf("%w: status line %q", ErrProtocol, line)
	}
	for range 100 {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, h, fmt.Errorf("read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return status, h, nil
		}
		// Header names compared in place: lower-casing each line cost
		// the generator an allocation per header of every answer.
		switch {
		case hasPrefixFold(line, hdrContentLength):
			h.length, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(hdrContentLength):])))
		case hasPrefixFold(line, hdrTransferEnc):
			h.chunked = bytes.Contains(bytes.ToLower(line), []byte("chunked"))
		case hasPrefixFold(line, hdrWSAccept):
			h.accept = string(bytes.TrimSpace(line[len(hdrWSAccept):]))
		}
	}
	return 0, h, fmt.Errorf("%w: too many headers", ErrProtocol)
}

// hasPrefixFold reports whether b starts with prefix, ignoring ASCII
// case (prefix is lower case).
func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], prefix)
}

// api is the plain net/http client for setup calls (create, delete).
// createEmitter creates an emitter of kind with config and no persisted
// history, and returns its id.
func (e *env) createEmitter(ctx context.Context, kind string, config any) (string, error) {
	raw, err := json.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encode %s config: %w", kind, err)
	}
	persist := false
	em, err := e.api.CreateEmitter(ctx, api.CreateEmitter{Kind: kind, Config: raw, Retention: &api.RetentionRequest{Persist: &persist}})
	return em.ID, err
}

// deleteEmitter removes an emitter the run created; it runs after the
// run's context may have ended, so it has its own deadline.
func (e *env) deleteEmitter(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.api.DeleteEmitter(ctx, id); err != nil {
		e.note("cleanup: " + err.Error())
	}
}

// connectAll runs open(i) for i in [0,n) with bounded concurrency and
// returns the first error after every attempt finished.
func (e *env) connectAll(ctx context.Context, n int, open func(ctx context.Context, i int) error) error {
	sem := make(chan struct{}, e.o.ConnectConcurrency)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := open(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
