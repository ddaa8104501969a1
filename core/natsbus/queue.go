package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
)

var _ queue.Driver = (*QueueDriver)(nil)

// QueueOptions configure a QueueDriver. Every node of a cluster must use
// the same Stream and Subject.
type QueueOptions struct {
	// Replicas of the log stream and the snapshot bucket (default 1).
	Replicas int
	// Node names this node in logs.
	Node string
	Log  *slog.Logger
	// Stream is the log stream's name (default SIDESTREAM_QUEUES); the
	// snapshot object store is Stream + "_SNAP".
	Stream string
	// Subject prefixes the log's subjects (default sidestream.queues.ops).
	Subject string
	// SnapshotEvery is how many log entries separate two snapshots
	// (default 50,000); the log is purged up to each snapshot.
	SnapshotEvery uint64
	// MaxBatchOps and MaxBatchBytes bound one log entry (defaults 1024
	// ops, 512 KiB; a single larger op still goes alone).
	MaxBatchOps   int
	MaxBatchBytes int
	// Publishers is how many log entries one node has in flight at once
	// (default 1: on a busy node, fewer and bigger entries cost less than more in flight).
	Publishers int
	// Timeout bounds one publish or JetStream request (default 10s).
	Timeout time.Duration
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Stream == "" {
		o.Stream = "SIDESTREAM_QUEUES"
	}
	if o.Subject == "" {
		o.Subject = "sidestream.queues.ops"
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = 50_000
	}
	if o.MaxBatchOps <= 0 {
		o.MaxBatchOps = 1024
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 512 << 10
	}
	if o.Publishers <= 0 {
		o.Publishers = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}

// QueueDriver is the JetStream queue.Driver: a replicated state machine.
//
// One stream (QueueOptions.Stream, file storage, Replicas R) is the
// ordered log of every mutating call of every node: create/delete queue,
// set metadata, post, delete, pop, claim, renew, release, expire. Each op
// carries what its effect depends on (the proposer's now, the claim id it
// generated); message ids come from a counter of the state as it is
// applied. Every node reads the whole log with an ordered consumer and
// applies it, in order, to its own memq.State, so all nodes hold the same
// state at the same log seq. Why this design:
//
//   - Claims are exclusive cluster-wide without a lock service: two
//     claims are two log entries, and every node decides both the same
//     way, in log order.
//   - A call is answered with the result of applying its own op, which
//     exists only once its entry is stored in the stream; with R > 1 the
//     stream stores an entry only after a quorum of replicas has it (the
//     publish ack comes from the same point). A killed node loses nothing
//     that was answered; a node whose publish failed answers an error.
//     Durable means what the servers make it: JetStream writes the stream
//     file at once but fsyncs it on its sync_interval unless sync_always
//     is set, so R1 survives a killed process, and a power loss only
//     with sync_always; R3 survives losing a node either way. A call
//     whose publish timed out answers ErrUnavailable though its entry may
//     still be stored and applied (the ack was lost, not the entry): as
//     with any client of a replicated log, a post retried then may be
//     stored twice (delivery is at-least-once anyway).
//   - Reads are local: after a no-op appended to the log has been
//     applied here (shared by concurrent reads), so a read sees every
//     write acknowledged before it on any node.
//   - Concurrent calls share log entries: a publisher takes every op
//     waiting and appends them as one entry, so the cost per entry (a
//     publish, a raft round with R > 1, a delivery per node) is spread
//     over as many ops as arrive while the previous entry is in flight.
//   - The log is bounded by snapshots (queue_snapshot.go); a node starting
//     or restarting loads the newest one and replays the log after it,
//     and a node that finds the log purged past its position reloads.
//   - Expiry is an op as well (Service's sweeper proposes it only when the
//     local state has something expired), and every read takes its now
//     from the caller, so expiry is the same on every node.
//
// The whole state is in memory on every node (message bodies too): queue
// backlogs are bounded by memory, not disk, which suits queues that are
// drained, not archives.
type QueueDriver struct {
	js   jetstream.JetStream
	o    QueueOptions
	log  *slog.Logger
	inst string // this instance, unique: entries it proposed carry it
	subj string

	props chan *proposal
	// bg lives until Close; quit is its Done channel.
	bg   context.Context
	stop context.CancelFunc
	quit <-chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	pmu       sync.Mutex
	pending   map[uint64][]*proposal // batch → its callers, until applied or failed
	nextBatch uint64

	// smu guards st and applied; the applier is the only writer.
	smu     sync.RWMutex
	st      *memq.State
	applied uint64 // the last log seq applied to st

	snap *snapshotter
	cons *consumer
	last barrier
}

// NewQueueDriver creates (or joins) the log stream, loads the newest
// snapshot, and starts applying the log from there. Reads wait until the
// local state has caught up with the log, so the driver may be used at
// once.
func NewQueueDriver(ctx context.Context, js jetstream.JetStream, o QueueOptions) (*QueueDriver, error) {
	o = o.withDefaults()
	d := &QueueDriver{
		js: js, o: o, log: o.Log.With("component", "queue-driver", "node", o.Node),
		inst: uuid.NewString(), subj: o.Subject + ".log",
		props:   make(chan *proposal, 4096),
		pending: map[uint64][]*proposal{},
	}
	err := retryJS(ctx, "natsbus: queue log stream "+o.Stream, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: o.Stream, Subjects: []string{o.Subject + ".>"},
			Storage: jetstream.FileStorage, Replicas: o.Replicas,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			Description: "sidestream queues: the ordered log of every queue write",
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	err = retryJS(ctx, "natsbus: start queue driver", func(ctx context.Context) (err error) {
		d.snap, err = newSnapshotter(ctx, d)
		return err
	})
	if err != nil {
		return nil, err
	}
	var (
		st  *memq.State
		seq uint64
	)
	err = retryJS(ctx, "natsbus: start queue driver", func(ctx context.Context) (err error) {
		st, seq, err = d.snap.load(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.st, d.applied = st, seq
	if d.cons, err = d.startConsumer(ctx, seq+1); err != nil {
		return nil, err
	}
	d.bg, d.stop = context.WithCancel(context.Background())
	d.quit = d.bg.Done()
	d.last.d = d
	for range o.Publishers {
		d.wg.Go(d.publish)
	}
	d.wg.Go(d.applyLoop)
	return d, nil
}

// Close stops the driver: callers still waiting get queue.ErrClosed
// (their op may or may not be in the log). It waits for its goroutines
// until ctx ends.
func (d *QueueDriver) Close(ctx context.Context) error {
	d.once.Do(func() {
		d.stop()
		d.cons.stop()
	})
	done := make(chan struct{})
	go func() { d.wg.Wait(); d.snap.wait(); d.last.close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("natsbus: close queue driver: %w", ctx.Err())
	}
	d.pmu.Lock()
	for b, ps := range d.pending {
		delete(d.pending, b)
		fail(ps, queue.ErrClosed)
	}
	d.pmu.Unlock()
	return nil
}

func (d *QueueDriver) closed() bool { return d.bg.Err() != nil }

// read runs fn on the local state once it has applied everything the log
// held when read was called, so a read sees every write acknowledged
// before it, on any node.
func (d *QueueDriver) read(ctx context.Context, fn func(s *memq.State)) error {
	if err := d.catchUp(ctx); err != nil {
		return err
	}
	d.smu.RLock()
	defer d.smu.RUnlock()
	fn(d.st)
	return nil
}

// catchUp waits until the local state has applied every write
// acknowledged before catchUp was called, on any node.
func (d *QueueDriver) catchUp(ctx context.Context) error {
	if d.closed() {
		return queue.ErrClosed
	}
	return d.last.get(ctx)
}

// barrier catches reads up with the log: a round appends a no-op to the
// log and waits until this node has applied it, and so everything before
// it (the stream's info is no substitute: a follower may answer it from
// its own, older copy). Callers arriving while a round is out share the
// next one, which starts after they arrived; so polling consumers cost a
// few entries per round trip, not one per poll.
type barrier struct {
	d      *QueueDriver
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	busy   bool   // a round is out
	next   *round // the round callers join, started when busy ends
}

type round struct {
	done chan struct{}
	err  error
}

func (l *barrier) get(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return queue.ErrClosed
	}
	if l.next == nil {
		l.next = &round{done: make(chan struct{})}
	}
	r := l.next
	if !l.busy {
		l.busy, l.next = true, nil
		l.wg.Go(func() { l.run(r) })
	}
	l.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close waits for the round out (bg is cancelled first).
func (l *barrier) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
}

// run runs round r, then the round that gathered meanwhile.
func (l *barrier) run(r *round) {
	for r != nil {
		ctx, cancel := context.WithTimeout(l.d.bg, l.d.o.Timeout)
		_, r.err = l.d.propose(ctx, &op{Kind: opBarrier})
		cancel()
		close(r.done)
		l.mu.Lock()
		r, l.next = l.next, nil
		l.busy = r != nil
		l.mu.Unlock()
	}
}

// errClosedIf maps errors after Close to queue.ErrClosed.
func (d *QueueDriver) errClosedIf(err error) error {
	if err != nil && d.closed() && !errors.Is(err, queue.ErrClosed) {
		return fmt.Errorf("%w: %w", queue.ErrClosed, err)
	}
	return err
}
