package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumer is the ordered consumer reading the log, replaced when the
// applier has to resume elsewhere (after a gap).
type consumer struct {
	mu      sync.Mutex
	it      jetstream.MessagesContext
	stopped bool
}

func (c *consumer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.it != nil {
		c.it.Stop()
	}
}

// iter returns the current iterator (nil once stopped).
func (c *consumer) iter() jetstream.MessagesContext {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	return c.it
}

// startConsumer reads the log from seq from on.
func (d *QueueDriver) startConsumer(ctx context.Context, from uint64) (*consumer, error) {
	c := &consumer{}
	return c, d.restartConsumer(ctx, c, from)
}

func (d *QueueDriver) restartConsumer(ctx context.Context, c *consumer, from uint64) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	}
	oc, err := d.js.OrderedConsumer(ctx, d.o.Stream, cfg)
	if err != nil {
		return fmt.Errorf("natsbus: queue log consumer: %w", err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("natsbus: queue log consumer: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.it != nil {
		c.it.Stop()
	}
	c.it = it
	if c.stopped {
		it.Stop()
	}
	return nil
}

// applyLoop applies the log to the local state, in order, until Close.
func (d *QueueDriver) applyLoop() {
	for !d.closed() {
		it := d.cons.iter()
		if it == nil {
			return
		}
		m, err := it.Next()
		if err != nil {
			if d.closed() {
				return
			}
			d.log.Warn("queue log: read failed, resuming", "err", err)
			d.resume()
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			d.log.Error("queue log: message without metadata", "err", err)
			continue
		}
		seq := meta.Sequence.Stream
		d.smu.RLock()
		applied := d.applied
		d.smu.RUnlock()
		switch {
		case seq <= applied: // a consumer restart delivered it again
			continue
		case seq > applied+1:
			// Entries before seq were purged after a snapshot this node
			// has not loaded: load it and resume after it.
			d.log.Info("queue log: behind the log's start, loading the snapshot", "applied", applied, "first", seq)
			d.reload(seq - 1)
			continue
		}
		d.applyEntry(seq, m.Data())
	}
}

// applyEntry applies the entry at seq and hands this instance's results
// to its callers.
func (d *QueueDriver) applyEntry(seq uint64, data []byte) {
	e, err := decodeEntry(data)
	d.smu.Lock()
	rs := make([]result, len(e.Ops))
	if err == nil {
		for i := range e.Ops {
			rs[i] = e.Ops[i].apply(d.st)
		}
	}
	d.applied = seq
	d.smu.Unlock()
	if err != nil {
		// Every node skips it alike; its proposer (if it can tell) fails.
		d.log.Error("queue log: undecodable entry skipped", "seq", seq, "err", err)
		if e.Inst == d.inst {
			d.failBatch(e.Batch, fmt.Errorf("natsbus: queue log entry %d: %w", seq, err))
		}
		return
	}
	if e.Inst == d.inst {
		d.deliver(e.Batch, rs)
		if seq%d.o.SnapshotEvery == 0 {
			d.snap.take(seq)
		}
	}
}

// resume restarts the consumer after the last applied entry, retrying
// with a pause until it works or the driver closes.
func (d *QueueDriver) resume() {
	for !d.closed() {
		d.smu.RLock()
		from := d.applied + 1
		d.smu.RUnlock()
		ctx, cancel := context.WithTimeout(d.bg, d.o.Timeout)
		err := d.restartConsumer(ctx, d.cons, from)
		cancel()
		if err == nil {
			return
		}
		d.log.Warn("queue log: consumer restart failed", "err", err)
		select {
		case <-d.quit:
		case <-time.After(time.Second):
		}
	}
}

// reload replaces the local state with the newest snapshot, which must
// cover at least seq, and resumes the log after it.
func (d *QueueDriver) reload(seq uint64) {
	for !d.closed() {
		ctx, cancel := context.WithTimeout(d.bg, d.o.Timeout)
		st, at, err := d.snap.load(ctx)
		cancel()
		if err == nil && at < seq {
			err = fmt.Errorf("the newest snapshot covers %d, the log starts after %d", at, seq)
		}
		if err == nil {
			d.smu.Lock()
			d.st, d.applied = st, at
			d.smu.Unlock()
			d.resume()
			return
		}
		if errors.Is(err, context.Canceled) && d.closed() {
			return
		}
		d.log.Error("queue log: cannot catch up", "err", err)
		select {
		case <-d.quit:
		case <-time.After(time.Second):
		}
	}
}
