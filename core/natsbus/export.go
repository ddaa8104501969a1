package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// Exporter publishes the events of the streams this node owns, one NATS
// message per batch a subscriber's read returns, on the stream's subject.
// Other nodes subscribe once per stream they mirror; a batch they miss
// shows as a seq hole and is filled by RPC, so publishing needs no ack.
type Exporter struct {
	nc  *nats.Conn
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

// NewExporter returns an exporter publishing on nc.
func NewExporter(nc *nats.Conn, log *slog.Logger) *Exporter {
	return &Exporter{nc: nc, log: log, streams: map[string]context.CancelFunc{}}
}

// Export starts publishing st's new events (idempotent).
func (x *Exporter) Export(st *stream.Stream) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.streams[st.Name()]; ok || x.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.streams[st.Name()] = cancel
	sub := st.Subscribe(stream.FromNow())
	x.wg.Add(1)
	go x.run(ctx, st.Name(), sub)
}

// Unexport stops publishing a stream.
func (x *Exporter) Unexport(name string) {
	x.mu.Lock()
	cancel := x.streams[name]
	delete(x.streams, name)
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (x *Exporter) run(ctx context.Context, name string, sub *stream.Subscription) {
	defer x.wg.Done()
	defer sub.Close()
	subject := subjectEvents + token(name)
	var batch []*event.Event
	var buf []byte
	for {
		var err error
		batch, err = sub.Next(ctx, batch[:0])
		// A gap marker is this reader's own: mirrors see the hole and
		// fill it from the owner's history (or mark it themselves).
		batch = dropGaps(batch)
		if len(batch) > 0 {
			buf = encodeBatch(buf[:0], batch)
			if perr := x.nc.Publish(subject, buf); perr != nil && !errors.Is(perr, nats.ErrConnectionClosed) {
				x.log.Warn("publish events", "stream", name, "err", perr)
			}
		}
		if err != nil {
			return // the stream ended, or Unexport/Close
		}
	}
}

func dropGaps(evs []*event.Event) []*event.Event {
	n := 0
	for _, e := range evs {
		if !e.IsGap() {
			evs[n] = e
			n++
		}
	}
	return evs[:n]
}

// encodeBatch writes events as a JSON array of their envelopes (each
// encoded once per event, shared with WebSocket subscribers).
func encodeBatch(dst []byte, evs []*event.Event) []byte {
	dst = append(dst, '[')
	for i, e := range evs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.JSON()...)
	}
	return append(dst, ']')
}

// Close stops every export.
func (x *Exporter) Close(ctx context.Context) error {
	x.mu.Lock()
	x.closed = true
	for name, cancel := range x.streams {
		cancel()
		delete(x.streams, name)
	}
	x.mu.Unlock()
	return waitAll(ctx, &x.wg, "exporter")
}
