package emitter

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MaxCommandBatch bounds the commands one plugin round trip carries.
const MaxCommandBatch = 64

// Command runs a command on an emitter; its events and checkpoint are
// durable before Command returns the result.
//
// Commands of one emitter run one after another, each on the checkpoint the
// previous one left, but not one plugin round trip each: callers queue, and
// the caller that finds nobody leading runs every queued command in one
// Runner.CommandBatch, appends all their events and the last checkpoint in
// one Enqueue (one commit), hands the lead to whoever queued meanwhile and
// only then waits for the commit. So the round trip, not one per command,
// is the serial part.
func (m *Manager) Command(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error) {
	inst, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	if inst.spec.Stopped {
		return nil, fmt.Errorf("command %s on %s: emitter is stopped: %w", name, id, ErrUnavailable)
	}
	call := &commandCall{ctx: ctx, cmd: Cmd{Name: name, Args: args}, ready: make(chan struct{}), since: time.Now()}
	lead := inst.cmds.join(call)
	if !lead {
		if lead, err = inst.cmds.await(call); err != nil {
			return nil, fmt.Errorf("command %s on %s: %w", name, id, err)
		}
	}
	if lead {
		m.lead(inst, call)
	}
	if call.err != nil {
		return nil, fmt.Errorf("command %s on %s: %w", name, id, call.err)
	}
	select {
	case <-call.commit.done:
	case <-ctx.Done():
		// The commit may still land: this caller just stops waiting.
		return nil, fmt.Errorf("command %s on %s: %w", name, id, ctx.Err())
	}
	if err := call.commit.err; err != nil {
		return nil, fmt.Errorf("command %s on %s: %w", name, id, err)
	}
	return call.result, nil
}

// commandQueue holds the commands waiting for one instance and who leads.
type commandQueue struct {
	mu      sync.Mutex
	waiting []*commandCall
	// leading: some call runs a batch or was promoted to run the next;
	// false only when nothing waits.
	leading bool
}

// commandCall is one caller's command.
type commandCall struct {
	ctx   context.Context
	cmd   Cmd
	since time.Time // when it was called: its queue stage starts
	// ready is closed exactly once: when the call is promoted to leader
	// (lead set, still queued) or when a leader answered it (taken).
	ready chan struct{}
	lead  bool
	// Set by the leader before ready closes: err, or result and the
	// commit that holds its events and checkpoint.
	result json.RawMessage
	err    error
	commit *batchCommit
}

// batchCommit is the commit of one batch, shared by its callers.
type batchCommit struct {
	done chan struct{}
	err  error
}

// join queues c; true means c leads (nobody was leading).
func (q *commandQueue) join(c *commandCall) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting = append(q.waiting, c)
	if q.leading {
		return false
	}
	q.leading = true
	return true
}

// await waits until c is promoted (true) or answered (false, nil). A
// caller whose ctx ends first leaves: still queued, its command never runs
// (and a promotion passes on); already taken, it may run and commit, but
// this caller was not acknowledged for it.
func (q *commandQueue) await(c *commandCall) (lead bool, err error) {
	select {
	case <-c.ready:
		return c.lead, nil
	case <-c.ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := slices.Index(q.waiting, c); i >= 0 {
		q.waiting = slices.Delete(q.waiting, i, i+1)
		if c.lead {
			q.promoteLocked()
		}
	}
	return false, c.ctx.Err()
}

// alone reports whether only the leader's own call is queued.
func (q *commandQueue) alone() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting) == 1
}

// take removes the first MaxCommandBatch waiting calls (the leader's own
// is the first: it joined an empty queue or was promoted from the head).
func (q *commandQueue) take() []*commandCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.waiting), MaxCommandBatch)
	calls := slices.Clone(q.waiting[:n])
	q.waiting = slices.Delete(q.waiting, 0, n)
	return calls
}

// handOff ends a leader's turn: the first waiting call leads next.
func (q *commandQueue) handOff() {
	q.mu.Lock()
	q.promoteLocked()
	q.mu.Unlock()
}

func (q *commandQueue) promoteLocked() {
	if len(q.waiting) == 0 {
		q.leading = false
		return
	}
	next := q.waiting[0]
	next.lead = true
	close(next.ready)
}

// lead runs one batch for the queued calls (self among them), answers
// each and hands the lead on; the commit completes for everyone in it in
// the background.
func (m *Manager) lead(inst *instance, self *commandCall) {
	if inst.cmds.alone() {
		// Callers whose requests are already read wait for a P behind
		// this one: yielding once lets them queue, so the round trip
		// carries them too instead of one more round trip each (plugin
		// and host CPU per command: measured 2.9 -> 3.3 commands a round
		// trip in the fib bench, server CPU per next -7%).
		runtime.Gosched()
	}
	inst.mu.Lock()
	calls := inst.cmds.take()
	kind := inst.spec.Kind
	taken := time.Now()
	for _, c := range calls {
		m.obs.CommandStage(kind, StageQueue, taken.Sub(c.since), 1)
	}
	wait, committed := m.runBatchLocked(inst, calls, self.ctx)
	enqueued := time.Now()
	inst.mu.Unlock()
	inst.cmds.handOff()

	var bc *batchCommit
	if wait != nil {
		bc = &batchCommit{done: make(chan struct{})}
		for _, c := range committed {
			c.commit = bc
		}
	}
	for _, c := range calls {
		if c != self {
			close(c.ready)
		}
	}
	if bc == nil {
		return
	}
	// The outcome is waited for even once every caller gave up: a commit
	// that fails then must still resync, or the next command would build
	// on a checkpoint that was never stored. So the wait does not end with
	// the callers' ctxs (the store bounds it, as it does the stream's) and
	// runs on its own, so the leader's caller leaves on its ctx in Command
	// like the others.
	go func() {
		ctx := context.WithoutCancel(self.ctx)
		bc.err = wait(ctx)
		m.obs.CommandStage(kind, StageCommit, time.Since(enqueued), len(committed))
		if bc.err != nil {
			inst.resync() // once for the batch, before anyone retries
		}
		close(bc.done)
	}()
}

// runBatchLocked runs calls in one CommandBatch and enqueues what the
// successful ones produced as one append. It sets err on every call that
// failed and returns the commit wait with the calls it holds (nil, nil if
// none). Callers hold inst.mu.
func (m *Manager) runBatchLocked(inst *instance, calls []*commandCall, leader context.Context) (func(context.Context) error, []*commandCall) {
	live := make([]*commandCall, 0, len(calls))
	cmds := make([]Cmd, 0, len(calls))
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err // gave up before its command ran: it never runs
			continue
		}
		live = append(live, c)
		cmds = append(cmds, c.cmd)
	}
	if len(live) == 0 {
		return nil, nil
	}
	inst.recoverLocked() // a failure nobody waited for (all callers left)
	ctx, stop := batchContext(leader, live)
	began := time.Now()
	outs, err := m.runner.CommandBatch(ctx, inst.spec.Kind, inst.spec.ID, inst.spec.Config, inst.latest, cmds)
	stop()
	m.obs.CommandStage(inst.spec.Kind, StagePlugin, time.Since(began), len(cmds))
	m.obs.CommandBatch(inst.spec.Kind, len(cmds))
	if err == nil && len(outs) != len(cmds) {
		err = fmt.Errorf("runner answered %d outcomes to %d commands", len(outs), len(cmds))
	}
	if err != nil {
		failAll(live, err)
		return nil, nil
	}
	var b Batch
	committed := make([]*commandCall, 0, len(live))
	for i, c := range live {
		if outs[i].Err != nil {
			c.err = outs[i].Err
			continue
		}
		c.result = outs[i].Result
		b.Events = append(b.Events, outs[i].Batch.Events...)
		if cp := outs[i].Batch.Checkpoint; cp != nil {
			b.Checkpoint = cp // the last one holds after all of them
		}
		committed = append(committed, c)
	}
	if len(committed) == 0 {
		return nil, nil
	}
	// Commands that only read still wait for what is queued before them.
	wait, err := inst.enqueueLocked(b)
	if err != nil {
		failAll(committed, err)
		return nil, nil
	}
	return wait, committed
}

func failAll(calls []*commandCall, err error) {
	for _, c := range calls {
		c.err = err
	}
}

// batchContext carries the leader's values (its trace) but ends only when
// every call in calls gave up: one caller leaving must not fail the others
// of its batch's round trip. stop releases it.
func batchContext(leader context.Context, calls []*commandCall) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(leader))
	var left atomic.Int64
	left.Store(int64(len(calls)))
	stops := make([]func() bool, len(calls))
	for i, c := range calls {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}
