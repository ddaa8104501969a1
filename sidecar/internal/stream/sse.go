// Package streamhttp writes core streams to HTTP clients as Server-Sent
// Events and WebSocket frames. Each subscriber has one writer loop that
// takes everything its subscription has available (one Next) and writes it
// in one write + flush: a slow client gets bigger writes, not more of them.
// Events are written from their cached encodings (event.SSE, event.JSON),
// never re-encoded per subscriber.
package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// FlushWriter is an HTTP response body that can be pushed to the client.
type FlushWriter interface {
	Write(p []byte) (int, error)
	Flush() error
}

// SSEOptions tune an SSE response.
type SSEOptions struct {
	// Retry is the reconnection delay sent first (default 2s).
	Retry time.Duration
	// Heartbeat is the interval of ": hb" comments while idle (default 15s).
	Heartbeat time.Duration
	// Observer, if set, is told about every write (telemetry).
	Observer Observer
}

func (o SSEOptions) withDefaults() SSEOptions {
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	return o
}

// heartbeat is the SSE comment sent while a stream is idle; it also
// detects clients that went away.
var heartbeat = []byte(": hb\n\n")

// ServeSSE writes sub to w until ctx ends (nil), the stream closes (nil:
// the caller ends the response so the client sees the end) or a write
// fails. It writes the retry line first so headers reach the client at once.
func ServeSSE(ctx context.Context, w FlushWriter, sub *stream.Subscription, o SSEOptions) error {
	o = o.withDefaults()
	buf := make([]byte, 0, 4096)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, o.Retry.Milliseconds(), 10)
	buf = append(buf, "\n\n"...)
	if err := writeFlush(w, buf); err != nil {
		return err
	}
	var evs []*event.Event
	for {
		var err error
		evs, err = nextOrBeat(ctx, sub, evs[:0], o.Heartbeat)
		switch {
		case len(evs) > 0:
			buf = buf[:0]
			for _, e := range evs {
				buf = append(buf, e.SSE()...)
			}
			if werr := writeFlush(w, buf); werr != nil {
				return werr
			}
			observe(o.Observer, evs, len(buf))
			clear(evs) // drop references for the GC while idle
		case errors.Is(err, errBeat):
			if werr := writeFlush(w, heartbeat); werr != nil {
				return werr
			}
			continue
		}
		if err != nil && !errors.Is(err, errBeat) {
			return endErr(ctx, err)
		}
	}
}

// errBeat means Next waited a whole heartbeat interval.
var errBeat = errors.New("heartbeat due")

// nextOrBeat is sub.Next bounded by one heartbeat interval.
func nextOrBeat(ctx context.Context, sub *stream.Subscription, dst []*event.Event, every time.Duration) ([]*event.Event, error) {
	nctx, cancel := context.WithTimeoutCause(ctx, every, errBeat)
	defer cancel()
	dst, err := sub.Next(nctx, dst)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(nctx), errBeat) {
		return dst, errBeat
	}
	return dst, err
}

// endErr turns the normal ends of a stream (closed, ctx done) into nil.
func endErr(ctx context.Context, err error) error {
	if errors.Is(err, stream.ErrClosed) || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("sse: %w", err)
}

func writeFlush(w FlushWriter, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("sse write: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("sse flush: %w", err)
	}
	return nil
}
