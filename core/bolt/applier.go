package bolt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
)

// ErrApply means a journaled record could not be written into the
// B-tree (a full disk, a damaged file). Until a retry succeeds, the store
// refuses reads and writes, since it cannot show what it acknowledged;
// the record stays in the journal (and is applied on the next Open if
// the store closes first).
var ErrApply = fmt.Errorf("bolt: applying the journal failed: %w (%w)", stream.ErrStoreUnavailable, queue.ErrUnavailable)

var keyJournal = []byte("journal")

// applier moves journaled records into the B-tree on its own goroutine,
// in one transaction per round of whatever is queued, so the B-tree's
// page writes and fsyncs are off the writers' path and shared by many
// groups.
type applier struct {
	s      *Store
	linger time.Duration

	mu      sync.Mutex
	queue   []pending
	bytes   int
	handed  uint64        // records queued so far
	applied uint64        // records in the B-tree so far
	caught  chan struct{} // closed (and replaced) whenever applied moves
	err     error         // ErrApply while applying fails
	stop    bool
	first   time.Time // when the oldest queued record was queued
	waiters int       // readers waiting: apply now, do not linger

	wake chan struct{} // one slot: work queued or stop asked
	done chan struct{}
}

type pending struct {
	rec *[]byte // frame buffer; the record starts at frameHdrLen
	pos journalPos
}

var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func newApplier(s *Store) *applier {
	linger := s.opts.applyLinger
	if linger <= 0 {
		linger = applyLinger
	}
	a := &applier{s: s, linger: linger, caught: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go a.run()
	return a
}

// push queues a journaled record. The caller acknowledges its writers
// only after push, so a read that starts after the acknowledgement waits
// for this record (see wait).
func (a *applier) push(buf *[]byte, pos journalPos) {
	a.mu.Lock()
	if len(a.queue) == 0 {
		a.first = time.Now()
	}
	a.queue = append(a.queue, pending{buf, pos})
	a.bytes += len(*buf)
	a.handed++
	a.mu.Unlock()
	a.poke()
}

func (a *applier) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// backlog is the bytes queued and not yet applied.
func (a *applier) backlog() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytes
}

// handedCount is the number of records queued so far; the next record
// pushed is number handedCount()+1.
func (a *applier) handedCount() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.handed
}

// wait returns once every record queued before the call is applied, or
// the applier failed, or ctx ends.
func (a *applier) wait(ctx context.Context) error {
	return a.waitFor(ctx, 0)
}

// waitFor is wait for the first target records only (0: all queued).
func (a *applier) waitFor(ctx context.Context, target uint64) error {
	a.mu.Lock()
	if target == 0 || target > a.handed {
		target = a.handed
	}
	if a.applied >= target || a.err != nil {
		err := a.err
		a.mu.Unlock()
		return err
	}
	a.waiters++
	defer func() {
		a.mu.Lock()
		a.waiters--
		a.mu.Unlock()
	}()
	for a.applied < target && a.err == nil {
		ch := a.caught
		a.mu.Unlock()
		a.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		a.mu.Lock()
	}
	err := a.err
	a.mu.Unlock()
	return err
}

// failed returns ErrApply while applying fails, else nil.
func (a *applier) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// close applies what is queued and stops.
func (a *applier) close() {
	a.mu.Lock()
	a.stop = true
	a.mu.Unlock()
	a.poke()
	<-a.done
}

// The applier lingers: a round starts once its oldest record is
// applyLinger old, or applyEagerBytes are queued, or somebody waits.
// Fewer, larger transactions write each stream's pages once for many
// appends, and leave the disk to the journal's fdatasyncs.
const (
	applyLinger     = 100 * time.Millisecond
	applyEagerBytes = 1 << 20
)

// next waits until a round is due and takes its records; ok is false
// once the applier is asked to stop and nothing is left.
func (a *applier) next(timer *time.Timer) (batch []pending, ok bool) {
	for {
		a.mu.Lock()
		n, stop := len(a.queue), a.stop
		var delay time.Duration
		if n > 0 && !stop && a.waiters == 0 && a.bytes < applyEagerBytes && a.err == nil {
			delay = a.linger - time.Since(a.first)
		}
		if n > 0 && delay <= 0 {
			batch = a.queue
			a.queue, a.bytes = nil, 0
			a.mu.Unlock()
			return batch, true
		}
		a.mu.Unlock()
		if n == 0 && stop {
			return nil, false
		}
		if delay <= 0 {
			<-a.wake
			continue
		}
		timer.Reset(delay)
		select {
		case <-a.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (a *applier) run() {
	defer close(a.done)
	var ar arena
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch, ok := a.next(timer)
		if !ok {
			return
		}
		if !a.applyRetrying(batch, &ar, timer) {
			return // closed while failing: the journal keeps the records
		}
		for _, p := range batch {
			*p.rec = (*p.rec)[:0]
			frameBufs.Put(p.rec)
		}
	}
}

// Backoff of the retries after a failed apply.
const (
	applyRetryMin = 10 * time.Millisecond
	applyRetryMax = time.Second
)

// applyRetrying applies batch. While that fails, the store answers
// ErrApply and the applier tries again with backoff, so a full disk
// recovers by itself once space is freed. Applying a batch again is
// harmless: the same keys and values, heads only move up, and the last
// checkpoint of the batch wins again. It reports false if the store was
// closed before an attempt succeeded.
func (a *applier) applyRetrying(batch []pending, ar *arena, timer *time.Timer) bool {
	for backoff := applyRetryMin; ; backoff = min(2*backoff, applyRetryMax) {
		err := a.apply(batch, ar)
		if hook := a.s.queueApplied.Load(); hook != nil && err == nil {
			a.mu.Lock()
			upTo := a.applied + uint64(len(batch))
			a.mu.Unlock()
			(*hook)(upTo)
		}
		a.mu.Lock()
		was, stop := a.err, a.stop
		if err == nil {
			a.err = nil
			a.applied += uint64(len(batch))
		} else {
			a.err = fmt.Errorf("%w: %w", ErrApply, err)
		}
		close(a.caught) // waiters see the progress or the failure
		a.caught = make(chan struct{})
		a.mu.Unlock()
		switch {
		case err == nil && was != nil:
			a.s.log.Info("journal apply recovered; the store serves again")
			return true
		case err == nil:
			return true
		case was == nil:
			a.s.log.Error("journal apply failed; reads and writes fail until a retry succeeds", "err", err)
		}
		if stop {
			return false
		}
		timer.Reset(backoff)
		select {
		case <-a.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// apply writes batch and the journal position after it in one
// transaction. If that fails, each record is tried in a transaction of
// its own, so the error names the record that cannot be applied and the
// ones before it are kept.
func (a *applier) apply(batch []pending, ar *arena) error {
	err := a.update(batch, ar)
	if err == nil || len(batch) == 1 {
		return err
	}
	for i := range batch {
		if err := a.update(batch[i:i+1], ar); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) update(batch []pending, ar *arena) error {
	ar.reset()
	start := time.Now()
	err := a.s.db.Update(func(tx *bbolt.Tx) error {
		t := newTxApply(tx, ar)
		for _, p := range batch {
			if err := t.record((*p.rec)[frameHdrLen:]); err != nil {
				return err
			}
		}
		if err := t.finish(); err != nil {
			return err
		}
		return tx.Bucket(bktMeta).Put(keyJournal, batch[len(batch)-1].pos.encode())
	})
	if err != nil {
		return dbErr(err)
	}
	a.s.stats.applyTxs.Add(1)
	a.s.stats.applyNanos.Add(uint64(time.Since(start)))
	return nil
}
