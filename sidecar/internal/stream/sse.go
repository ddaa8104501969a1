// Package streamhttp writes core streams to HTTP clients as Server-Sent
// Events and WebSocket frames. Each subscriber has one writer loop that
// takes everything its subscription has available (one Next) and writes it
// in one write + flush: a slow client gets bigger writes, not more of them.
// Events are written from their cached encodings (wire.SSEFrame,
// event.JSON), never re-encoded per subscriber.
package streamhttp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/thin"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
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
	// EventTypes names every event's type in an event: field
	// (wire.SSEFrameTyped); by default only control markers are named
	// (wire.SSEFrame), so EventSource.onmessage receives the events.
	EventTypes bool
	// MaxRate, if not zero, caps the events sent a second (thin.Check
	// validated it); what is left out is reported by skipped markers.
	MaxRate uint64
	// Filter, if set, keeps only the events it matches (control markers
	// always pass); nil leaves the cached-frame path as it is.
	Filter *filter.Filter
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

// ServeSSE writes sub to w until ctx ends (nil), the stream closes (nil:
// the caller ends the response so the client sees the end) or a write
// fails. It writes the retry line first so headers reach the client at once.
func ServeSSE(ctx context.Context, w FlushWriter, sub *stream.Subscription, o SSEOptions) error {
	s := SSEStream{W: w, Sub: sub, Opts: o}
	if err := s.Start(); err != nil {
		return err
	}
	return s.Run(ctx)
}

// SSEStream is ServeSSE in two steps, for a caller that writes the first
// bytes (Start) on one goroutine and leaves the rest (Run) to a new one.
// Run's goroutine then parks with a few small frames: a stack that grows
// beyond its 2 KiB start stays at 4 KiB, since Go halves a stack only
// when almost all of it is free, and 2 KiB per idle subscriber is a fifth
// of its budget. So Start also makes the heartbeat timer (the runtime's
// timer code is deep) and Run keeps its state here, not in locals.
type SSEStream struct {
	W    FlushWriter
	Sub  *stream.Subscription
	Opts SSEOptions

	beat *time.Timer
	evs  []*event.Event

	thin *thin.Thinner  // nil without MaxRate: the events go out as Next returned them
	out  []*event.Event // what thin let through, reused
}

// Start writes the retry line, so headers reach the client at once.
func (s *SSEStream) Start() error {
	s.Opts = s.Opts.withDefaults()
	var hello [32]byte
	if err := writeFlush(s.W, wire.AppendSSERetry(hello[:0], s.Opts.Retry)); err != nil {
		return err
	}
	// One heartbeat timer for the whole response, re-armed after each
	// write: a context and timer per Next cost ~12% of the server's CPU
	// at 1M deliveries/s.
	s.beat = time.NewTimer(s.Opts.Heartbeat)
	if s.Opts.MaxRate > 0 {
		s.thin = thin.New(s.Opts.MaxRate)
	}
	return nil
}

// Run writes events and heartbeats after a successful Start, with
// ServeSSE's ends and errors.
func (s *SSEStream) Run(ctx context.Context) error {
	for {
		evs, err := s.Sub.NextUntil(ctx, s.evs[:0], s.beat.C)
		s.evs = evs
		if s.Opts.Filter != nil && len(evs) > 0 {
			if s.evs = s.Opts.Filter.Keep(evs); len(s.evs) == 0 && err == nil {
				// Nothing matched: a chatty stream whose events all miss
				// never lets NextUntil see the timer, so look at it here.
				if !s.beatDue() {
					continue
				}
				err = stream.ErrIdle
			}
		}
		if err = s.deliver(ctx, err); err != nil {
			s.beat.Stop()
			if errors.Is(err, errEnded) {
				return nil
			}
			return err
		}
	}
}

// beatDue reports (and takes) a heartbeat tick that fired meanwhile.
func (s *SSEStream) beatDue() bool {
	select {
	case <-s.beat.C:
		return true
	default:
		return false
	}
}

// errEnded is deliver's "the stream or ctx ended".
var errEnded = errors.New("sse: ended")

// deliver writes what one NextUntil returned: events, or a heartbeat when
// the timer fired; it returns errEnded for the normal ends.
func (s *SSEStream) deliver(ctx context.Context, err error) error {
	switch {
	case len(s.evs) > 0:
		if werr := s.writeEvents(s.evs); werr != nil {
			return werr
		}
		clear(s.evs) // drop references for the GC while idle
	case errors.Is(err, stream.ErrIdle) && s.thin != nil && s.thin.Pending():
		// The timer was set for when the rate allows an event again
		// and none came: say what was left out now (it proves the
		// connection alive too, as a heartbeat would).
		s.out = s.thin.Flush(s.out[:0])
		if werr := s.writeOut(); werr != nil {
			return werr
		}
	case errors.Is(err, stream.ErrIdle):
		if werr := writeFlush(s.W, wire.SSEHeartbeat); werr != nil {
			return werr
		}
	}
	if err != nil && !errors.Is(err, stream.ErrIdle) {
		if err = endErr(ctx, err); err == nil {
			return errEnded
		}
		return err
	}
	// Since Go 1.23 Reset also drops a tick not yet received.
	s.beat.Reset(s.wait())
	return nil
}

// writeEvents writes evs, thinned first with MaxRate.
func (s *SSEStream) writeEvents(evs []*event.Event) error {
	if s.thin == nil {
		n, err := writeEvents(s.W, evs, s.Opts.EventTypes)
		if err == nil {
			observe(s.Opts.Observer, evs, n)
		}
		return err
	}
	s.out = s.thin.Thin(time.Now(), s.out[:0], evs)
	return s.writeOut()
}

// writeOut writes what thinning let through (maybe nothing).
func (s *SSEStream) writeOut() error {
	if len(s.out) == 0 {
		return nil
	}
	n, err := writeEvents(s.W, s.out, s.Opts.EventTypes)
	if err == nil {
		observe(s.Opts.Observer, s.out, n)
	}
	clear(s.out)
	return err
}

// wait is how long the next NextUntil may idle: a heartbeat, or until a
// pending skipped marker is due.
func (s *SSEStream) wait() time.Duration {
	if s.thin != nil && s.thin.Pending() {
		return min(s.Opts.Heartbeat, max(s.thin.Due(time.Now()), time.Millisecond))
	}
	return s.Opts.Heartbeat
}

// writePool holds the write buffers of SSE and WS responses. An idle
// subscriber holds none: with 10,000 quiet streams, a buffer each is 40 MiB.
var writePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooled keeps buffers grown by a large batch out of the pool.
const maxPooled = 64 << 10

// FramesWriter is a FlushWriter that can send several byte slices as one
// write without copying them (one writev).
type FramesWriter interface {
	WriteFrames(frames [][]byte) (int, error)
}

// framesPool holds the slices of frame references FramesWriter takes.
var framesPool = sync.Pool{New: func() any { f := make([][]byte, 0, 64); return &f }}

// writeEvents writes the cached SSE frames of evs (typed: the frames
// that name every type) in one write + flush and returns the bytes
// written. A FramesWriter gets the cached frames themselves: a lagging
// subscriber's batch of up to stream.MaxBatch events then costs no copy
// and no buffer growth (which, with the garbage it left, was over 40% of
// a serving node's CPU while subscribers caught up).
func writeEvents(w FlushWriter, evs []*event.Event, typed bool) (int, error) {
	frame := wire.SSEFrame
	if typed {
		frame = wire.SSEFrameTyped
	}
	if fw, ok := w.(FramesWriter); ok {
		fp := framesPool.Get().(*[][]byte)
		frames := (*fp)[:0]
		for _, e := range evs {
			frames = append(frames, frame(e))
		}
		n, err := fw.WriteFrames(frames)
		clear(frames)
		*fp = frames[:0]
		framesPool.Put(fp)
		if err == nil {
			err = w.Flush()
		}
		return n, err
	}
	bp := writePool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, e := range evs {
		buf = append(buf, frame(e)...)
	}
	// The writer is done with buf once Flush returned: Hertz copies small
	// writes and sends large ones during Flush, never after.
	err := writeFlush(w, buf)
	n := len(buf)
	if cap(buf) <= maxPooled {
		*bp = buf[:0]
		writePool.Put(bp)
	}
	return n, err
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
