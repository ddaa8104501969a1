package apiclient

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// connectSSE runs one SSE connection and returns how many new events it
// delivered and why it ended.
func (f *follower) connectSSE(ctx context.Context) (int, error) {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, f.resumeURL(), nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	f.c.header(req.Header)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if f.known {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(f.last, 10))
	}
	resp, err := f.c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("apiclient: connect %s: %w", f.target.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, readAPIError(resp.StatusCode, resp.Body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return 0, fmt.Errorf("%w: %s answered %q, not text/event-stream", ErrProtocol, f.target.Redacted(), mt)
	}
	// The watchdog ends a connection that went silent (no heartbeat): a
	// half-open TCP connection otherwise blocks forever.
	errIdle := fmt.Errorf("apiclient: no data for %s", f.o.IdleTimeout)
	dog := time.AfterFunc(f.o.IdleTimeout, func() { cancel(errIdle) })
	defer dog.Stop()
	dec := NewSSEDecoder(&idleReader{r: resp.Body, dog: dog, idle: f.o.IdleTimeout}, f.o.MaxEventBytes)
	delivered := 0
	for {
		sev, err := dec.Next()
		if d, ok := dec.Retry(); ok {
			f.retry = d
		}
		if err != nil {
			if cause := context.Cause(cctx); cause != nil && ctx.Err() == nil {
				err = cause
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the server ended the stream
			}
			return delivered, err
		}
		seq, perr := strconv.ParseUint(sev.ID, 10, 64)
		if perr != nil {
			return delivered, fmt.Errorf("%w: event id %q is not a seq", ErrProtocol, sev.ID)
		}
		ok, err := f.accept(api.Event{Seq: seq, Type: sev.Event, Data: sev.Data})
		if err != nil {
			return delivered, err
		}
		if ok {
			delivered++
		}
	}
}

// idleReader pushes the watchdog back on every read that returns data.
type idleReader struct {
	r    io.Reader
	dog  *time.Timer
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.dog.Reset(r.idle)
	}
	return n, err
}
