package natsbus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/queue"
)

// proposal is one caller's op on its way through the log.
type proposal struct {
	raw []byte      // the op, encoded
	res chan result // buffered: exactly one result is sent
}

// propose appends o to the log and returns its result as applied by this
// node. The result exists only once the entry is in the stream (and, with
// Replicas > 1, replicated to a quorum): the consumer sees nothing less.
func (d *QueueDriver) propose(ctx context.Context, o *op) (result, error) {
	p := &proposal{raw: appendOp(nil, o), res: make(chan result, 1)}
	select {
	case d.props <- p:
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-d.quit:
		return result{}, queue.ErrClosed
	}
	select {
	case r := <-p.res:
		return r, r.err
	case <-ctx.Done():
		return result{}, ctx.Err() // the op may still be applied
	case <-d.quit:
		return result{}, queue.ErrClosed
	}
}

// publish is one publisher: it takes every proposal waiting (up to the
// batch bounds) and appends them to the log as one entry. Each of the
// Publishers has one entry in flight, so proposals that arrive meanwhile
// form the next batch: the busier the driver, the bigger its entries.
func (d *QueueDriver) publish() {
	buf := make([]byte, 0, 64<<10)
	var ops [][]byte
	for {
		var first *proposal
		select {
		case first = <-d.props:
		case <-d.quit:
			d.drainProposals()
			return
		}
		batch := []*proposal{first}
		ops = append(ops[:0], first.raw)
		size := len(first.raw)
	fill:
		for len(batch) < d.o.MaxBatchOps && size < d.o.MaxBatchBytes {
			select {
			case p := <-d.props:
				batch = append(batch, p)
				ops = append(ops, p.raw)
				size += len(p.raw)
			default:
				break fill
			}
		}
		d.pmu.Lock()
		d.nextBatch++
		id := d.nextBatch
		d.pending[id] = batch
		d.pmu.Unlock()
		buf = appendEntry(buf[:0], d.inst, id, ops)
		if err := d.send(buf); err != nil {
			d.failBatch(id, fmt.Errorf("%w: queue log: %w", queue.ErrUnavailable, err))
		}
	}
}

// send publishes one entry and waits for the stream's ack.
func (d *QueueDriver) send(data []byte) error {
	ctx, cancel := context.WithTimeout(d.bg, d.o.Timeout)
	defer cancel()
	_, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: d.subj, Data: data}, jetstream.WithExpectStream(d.o.Stream))
	return err
}

// failBatch fails a batch's callers unless the applier got to it first
// (an ack lost after the entry was stored).
func (d *QueueDriver) failBatch(id uint64, err error) {
	d.pmu.Lock()
	ps, ok := d.pending[id]
	delete(d.pending, id)
	d.pmu.Unlock()
	if ok {
		fail(ps, d.errClosedIf(err))
	}
}

func (d *QueueDriver) drainProposals() {
	for {
		select {
		case p := <-d.props:
			p.res <- result{err: queue.ErrClosed}
		default:
			return
		}
	}
}

func fail(ps []*proposal, err error) {
	for _, p := range ps {
		p.res <- result{err: err}
	}
}

// deliver hands the results of batch id (applied from the log) to its
// callers, if they still wait.
func (d *QueueDriver) deliver(id uint64, rs []result) {
	d.pmu.Lock()
	ps, ok := d.pending[id]
	delete(d.pending, id)
	d.pmu.Unlock()
	if !ok {
		return
	}
	for i, p := range ps {
		if i < len(rs) {
			p.res <- rs[i]
		} else {
			p.res <- result{err: fmt.Errorf("natsbus: queue log entry %d lost op %d", id, i)}
		}
	}
}
