package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// Exporter publishes the events of the streams this node owns, one NATS
// message per batch, on the stream's subject. Other nodes subscribe once
// per stream they mirror; a batch they miss shows as a seq hole and is
// filled by RPC, so publishing needs no ack.
//
// A batch gathers what arrives within the linger after its first event:
// every subscriber on every other node wakes and writes once per message,
// so at 1000 events/s a 2 ms linger halves the writes (and the syscalls
// that dominate fan-out) for at most 2 ms of added latency.
type Exporter struct {
	nc     *nats.Conn
	log    *slog.Logger
	linger time.Duration

	mu      sync.Mutex
	streams map[string]context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

// NewExporter returns an exporter publishing on nc, gathering each batch
// for linger (0: publish what each read returns at once).
func NewExporter(nc *nats.Conn, linger time.Duration, log *slog.Logger) *Exporter {
	return &Exporter{nc: nc, log: log, linger: linger, streams: map[string]context.CancelFunc{}}
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
	var timer *time.Timer
	if x.linger > 0 {
		timer = time.NewTimer(x.linger)
		defer timer.Stop()
	}
	for {
		var err error
		batch, err = sub.Next(ctx, batch[:0])
		if err == nil && timer != nil {
			batch, err = gather(ctx, sub, batch, timer, x.linger)
		}
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

// gather adds to batch what sub delivers within linger (rearming timer),
// up to stream.MaxBatch events.
func gather(ctx context.Context, sub *stream.Subscription, batch []*event.Event, timer *time.Timer, linger time.Duration) ([]*event.Event, error) {
	timer.Reset(linger) // since Go 1.23 Reset also drops a stale tick
	for len(batch) < stream.MaxBatch {
		var err error
		batch, err = sub.NextUntil(ctx, batch, timer.C)
		if errors.Is(err, stream.ErrIdle) {
			return batch, nil
		}
		if err != nil {
			return batch, err
		}
	}
	timer.Stop()
	return batch, nil
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
