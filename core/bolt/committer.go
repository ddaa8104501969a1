package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/stream"
)

// request is one write waiting for the committer: a stream append, a
// tagged record entry (queue posts and deletes), or (when op is set) any
// other write such as a spec or a prune chunk. Appends and entries are
// journaled; ops are B-tree transactions.
type request struct {
	a    stream.Append
	op   func(tx *bbolt.Tx, ar *arena) error
	size int
	// entry is an encoded tagged record entry (record_queue.go), and
	// journaled is called on the committer once the record is durable,
	// before the applier can have it, with the record's number and the
	// entry's copy in the record, which stays valid and unchanged until
	// the applier has written the record into the B-tree.
	entry     []byte
	journaled func(rec uint64, inRecord []byte)
	// waits: which journaled records an op must see in the B-tree.
	waits waitClass
	done  chan error // buffered: the committer never blocks on a caller
}

// waitClass says which journaled records an op waits for before it runs.
type waitClass uint8

const (
	// waitAll: the op touches what appends write (history, heads,
	// checkpoints): every journaled record first.
	waitAll waitClass = iota
	// waitNone: the op touches nothing the journal writes (specs).
	waitNone
	// waitQueue: the op touches queue buckets: journaled queue entries
	// first, appends need not be applied.
	waitQueue
)

var reqPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// Commit stores a durably: its events, its head and its checkpoint in
// one transaction, shared with whatever other writes are queued. It
// returns once that transaction is committed. If ctx ends before the
// committer takes the append, Commit returns ctx's error and nothing is
// written; once taken, Commit waits for the outcome.
func (s *Store) Commit(ctx context.Context, a stream.Append) error {
	wait, err := s.Submit(ctx, a)
	if err != nil {
		return err
	}
	return wait()
}

// Submit is Commit in two steps (stream.Submitter): it returns once the
// committer holds a, so appends submitted one after the other commit in
// that order, and wait returns the outcome. An append of a stream whose
// events come after those of its failed append is refused (ErrFenced).
func (s *Store) Submit(ctx context.Context, a stream.Append) (wait func() error, err error) {
	end := func(error) {}
	if s.opts.Trace != nil {
		ctx, end = s.opts.Trace(ctx, "store.commit")
	}
	size, err := checkAppend(&a)
	if err != nil {
		end(err)
		return nil, err
	}
	r := reqPool.Get().(*request)
	r.a, r.size = a, size
	if err := s.send(ctx, r); err != nil {
		end(err)
		*r = request{done: r.done}
		reqPool.Put(r)
		return nil, err
	}
	return func() error {
		err := <-r.done
		end(err)
		*r = request{done: r.done}
		reqPool.Put(r)
		return err
	}, nil
}

// write runs op through the committer like an append, after every
// append queued before it.
func (s *Store) write(ctx context.Context, size int, op func(*bbolt.Tx, *arena) error) error {
	return s.writeOp(ctx, size, op, waitAll)
}

// writeDirect is write for an op that touches nothing the journal
// writes (specs): it commits without waiting for the journal applier.
func (s *Store) writeDirect(ctx context.Context, size int, op func(*bbolt.Tx, *arena) error) error {
	return s.writeOp(ctx, size, op, waitNone)
}

// writeQueue is write for an op on queue buckets: it runs once every
// journaled queue entry is in the B-tree, and waits for no append.
func (s *Store) writeQueue(ctx context.Context, size int, op func(*bbolt.Tx, *arena) error) error {
	return s.writeOp(ctx, size, op, waitQueue)
}

func (s *Store) writeOp(ctx context.Context, size int, op func(*bbolt.Tx, *arena) error, waits waitClass) error {
	r := reqPool.Get().(*request)
	r.op, r.size, r.waits = op, size, waits
	err := s.submit(ctx, r)
	*r = request{done: r.done}
	reqPool.Put(r)
	return err
}

// journalEntry makes a tagged record entry durable through the journal,
// like an append; journaled runs on the committer once it is (see
// request). entry is copied into the record: the caller may reuse it
// once journalEntry returns.
func (s *Store) journalEntry(ctx context.Context, entry []byte, journaled func(rec uint64, inRecord []byte)) error {
	r := reqPool.Get().(*request)
	r.entry, r.journaled, r.size = entry, journaled, len(entry)
	err := s.submit(ctx, r)
	*r = request{done: r.done}
	reqPool.Put(r)
	return err
}

// submit hands r to the committer. The channel is unbuffered on purpose:
// a successful send means the committer holds r, which makes "taken" a
// precise point for ctx and Close; waiting senders are the next group.
func (s *Store) submit(ctx context.Context, r *request) error {
	if err := s.send(ctx, r); err != nil {
		return err
	}
	return <-r.done
}

// send is submit up to the point where the committer holds r.
func (s *Store) send(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return ErrClosed
	}
	select {
	case s.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return ErrClosed
	}
}

// run is the committer: it takes one request, then everything else that
// is already waiting (bounded by MaxBatch and MaxBatchBytes), and commits
// them in one transaction; while one group's journal record syncs, the
// next group is gathered and written, and its sync joins the first
// (syncpipe.go). Only B-tree groups on a busy store linger briefly for
// more (see opLinger).
func (s *Store) run() {
	defer close(s.done)
	defer s.shutdown()
	group := make([]*request, 0, s.opts.MaxBatch)
	var ar arena
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	last := 0 // size of the previous group: how busy the store is
	for {
		r := s.next()
		if r == nil {
			return
		}
		group = append(group[:0], r)
		size := r.size
		group, size = s.gather(group, size)
		if r.op != nil && last >= opLingerBusy && len(group) < s.opts.MaxBatch && size < s.opts.MaxBatchBytes {
			// The ops wait for the syncs in flight anyway; answering
			// those first keeps the linger from holding durable groups.
			s.drain()
			group, _ = s.gatherFor(group, size, linger)
		}
		last = len(group)
		s.commitGroup(group, &ar)
		clear(group)
	}
}

// next waits for the next request, acknowledging groups as their syncs
// finish meanwhile; it takes no request while the pipe is full. nil
// means the store is closing: everything in flight is acknowledged.
func (s *Store) next() *request {
	for {
		reqs := s.reqs
		if s.pipe.full() {
			reqs = nil
		}
		select {
		case r := <-reqs:
			return r
		case res := <-s.pipe.results:
			s.synced(res)
		case <-s.quit:
			s.drain()
			return nil
		}
	}
}

// A group that starts with an op (a B-tree transaction: queues, specs)
// waits up to opLinger for more writes while the store is busy, i.e. the
// previous group held at least opLingerBusy writes. A transaction costs
// its page writes and two fsyncs whatever it holds, so at queue rates
// one with twice the writes nearly halves the cost per message; an idle
// store commits a lone write at once. Appends need no linger: a journal
// write is short, so groups refill by themselves.
const (
	opLinger     = 500 * time.Microsecond
	opLingerBusy = 4
)

// gather adds every request already waiting, within the group bounds.
func (s *Store) gather(group []*request, size int) ([]*request, int) {
	for len(group) < s.opts.MaxBatch && size < s.opts.MaxBatchBytes {
		select {
		case r := <-s.reqs:
			group = append(group, r)
			size += r.size
		default:
			return group, size
		}
	}
	return group, size
}

// gatherFor adds requests as they arrive for up to opLinger.
func (s *Store) gatherFor(group []*request, size int, t *time.Timer) ([]*request, int) {
	t.Reset(opLinger)
	defer t.Stop()
	for len(group) < s.opts.MaxBatch && size < s.opts.MaxBatchBytes {
		select {
		case r := <-s.reqs:
			group = append(group, r)
			size += r.size
		case <-t.C:
			return group, size
		case <-s.quit:
			return group, size
		}
	}
	return group, size
}

// shutdown runs once the committer stops taking writes: the applier
// writes what it holds, then the files close.
func (s *Store) shutdown() {
	var errs []error
	s.ap.close()
	if err := s.ap.failed(); err != nil {
		errs = append(errs, err)
	}
	if err := s.pipe.close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.jr.close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("bolt: close %s: %w", s.path, err))
	}
	s.closeErr = errors.Join(errs...)
}

// commitGroup commits g and acknowledges every request: appends and
// entries through the journal, ops straight into the B-tree once the
// journaled records they depend on are applied. The journaled part goes
// first: every request of a group is concurrent with the others (none
// was acknowledged when the others were sent), so that order is as good
// as the order they came in, and an op then never waits for the applier
// only to have the group's own appends follow it.
func (s *Store) commitGroup(g []*request, ar *arena) {
	if err := s.ap.failed(); err != nil {
		s.drain() // no failure overtakes an earlier group's answer
		for _, r := range g {
			s.ack(r, err)
		}
		return
	}
	nJournaled := count(g)
	switch nJournaled {
	case len(g):
		s.journalGroup(g)
		return
	case 0:
	default:
		var journaled []*request
		journaled, g = split(g)
		s.journalGroup(journaled)
	}
	// The ops wait for every journaled record before them to be handed
	// to the applier (mustSee counts those), so for the syncs in flight.
	s.drain()
	if need := s.mustSee(g); need > 0 {
		if err := s.ap.waitFor(context.Background(), need); err != nil {
			for _, r := range g {
				s.ack(r, err)
			}
			return
		}
	}
	s.commitInline(g, ar)
}

// mustSee is the number of journaled records ops must find applied.
func (s *Store) mustSee(ops []*request) uint64 {
	var need uint64
	for _, r := range ops {
		switch r.waits {
		case waitAll:
			return s.ap.handedCount()
		case waitQueue:
			need = s.lastQueueRec
		}
	}
	return need
}

// commitInline commits g straight into the B-tree. When the shared
// transaction fails, each request is replayed alone, in order, so one
// bad write fails only itself.
func (s *Store) commitInline(g []*request, ar *arena) {
	err := s.update(g, ar)
	if err == nil || len(g) == 1 {
		for _, r := range g {
			s.ack(r, err)
		}
		return
	}
	s.stats.replays.Add(1)
	s.log.Warn("group commit failed, replaying writes one by one", "writes", len(g), "err", err)
	for i, r := range g {
		s.ack(r, s.update(g[i:i+1], ar))
	}
}

// count returns how many requests of g are journaled (appends, entries).
func count(g []*request) (journaled int) {
	for _, r := range g {
		if r.op == nil {
			journaled++
		}
	}
	return journaled
}

// split sorts g into journaled requests and ops, each in order.
func split(g []*request) (journaled, ops []*request) {
	for _, r := range g {
		if r.op == nil {
			journaled = append(journaled, r)
		} else {
			ops = append(ops, r)
		}
	}
	return journaled, ops
}

// journalGroup writes g as one journal record and starts its sync; the
// group is acknowledged once that sync and every earlier one succeeded
// (retire), and the applier writes it into the B-tree later. Under
// NoSync it is acknowledged at once.
func (s *Store) journalGroup(g []*request) {
	if g = s.fenceOut(g); len(g) == 0 {
		return
	}
	buf, offs := s.encodeGroup(g)
	err := storageErr(s.makeJournalRoom(len(*buf)))
	began := time.Now() // OnCommit times the write and its sync
	var start int64
	var pos journalPos
	switch {
	case err != nil:
	case s.pipe.on():
		start, pos, err = s.jr.write(*buf)
	default:
		pos, err = s.jr.append(*buf)
	}
	if err = storageErr(err); err != nil {
		frameBufs.Put(buf)
		s.drain() // no failure overtakes an earlier group's answer
		for _, r := range g {
			s.ack(r, err)
		}
		return
	}
	if s.pipe.on() {
		s.pipe.launch(g, buf, offs, start, pos, began)
		return
	}
	s.handOver(g, buf, offs, pos, began)
	for _, r := range g {
		s.ack(r, nil)
	}
}

// encodeGroup frames g's record in a pooled buffer, and notes where its
// tagged entries start (in the committer's scratch, valid until the next
// group is encoded).
func (s *Store) encodeGroup(g []*request) (*[]byte, []int) {
	buf := frameBufs.Get().(*[]byte)
	rec := append((*buf)[:0], make([]byte, frameHdrLen)...)
	rec = binary.AppendUvarint(rec, uint64(len(g)))
	offs := s.entryOffs[:0]
	for _, r := range g {
		if r.entry != nil {
			offs = append(offs, len(rec))
			rec = append(rec, r.entry...)
		} else {
			rec = appendRecord(rec, &r.a)
		}
	}
	s.entryOffs = offs
	rec = slices.Grow(rec, frameHdrLen) // room for the zero header write puts behind it
	*buf = rec
	return buf, offs
}

// handOver runs once g's record is durable and every earlier one is
// acknowledged: the journaled hooks, then the applier gets the record.
// The hooks run before the applier can have the record, so what they
// note is never older than what it applies.
func (s *Store) handOver(g []*request, buf *[]byte, offs []int, pos journalPos, began time.Time) {
	rec := *buf
	no := s.ap.handedCount() + 1
	for _, r := range g {
		if r.entry == nil {
			continue
		}
		if r.journaled != nil {
			off := offs[0]
			r.journaled(no, rec[off:off+len(r.entry):off+len(r.entry)])
		}
		offs = offs[1:]
		s.lastQueueRec = no
	}
	s.ap.push(buf, pos)
	s.committed(began, len(g))
}

// makeJournalRoom keeps the journal and the applier's backlog bounded:
// past either limit it waits for the applier to catch up, and a journal
// past its limit then starts over as a new generation. Growing the file
// for a frame of n bytes, and the reset, sync the journal's own
// descriptor, so both wait for the syncs in flight first.
func (s *Store) makeJournalRoom(n int) error {
	if err := s.ap.failed(); err != nil {
		return err
	}
	if s.jr.size >= s.opts.JournalMaxBytes || s.ap.backlog() >= s.opts.MaxBatchBytes*8 {
		s.drain() // the records in flight must reach the applier first
		if err := s.ap.wait(context.Background()); err != nil {
			return err
		}
		if s.jr.size >= s.opts.JournalMaxBytes {
			if err := s.jr.reset(s.jr.gen + 1); err != nil {
				return err
			}
		}
	}
	if s.jr.needsGrow(n) {
		s.drain()
	}
	return nil
}

func (s *Store) update(g []*request, ar *arena) error {
	ar.reset()
	start := time.Now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, r := range g {
			if err := r.op(tx, ar); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storageErr(fmt.Errorf("bolt: commit: %w", dbErr(err)))
	}
	s.committed(start, len(g))
	return nil
}

// committed counts a durable commit of n writes (a transaction or a
// journal record) that started at start.
func (s *Store) committed(start time.Time, n int) {
	s.stats.txs.Add(1)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(time.Since(start), n)
	}
	for n := uint64(n); ; {
		cur := s.stats.maxGroup.Load()
		if n <= cur || s.stats.maxGroup.CompareAndSwap(cur, n) {
			break
		}
	}
}

// ack reads everything it needs from r before releasing the caller,
// which may reuse r at once.
func (s *Store) ack(r *request, err error) {
	s.noteSpace(err)
	switch {
	case err != nil:
		s.stats.failed.Add(1)
		if r.op == nil && r.entry == nil {
			s.fence.failed(&r.a)
		}
	case r.op == nil && r.entry == nil:
		s.stats.appends.Add(1)
		s.stats.events.Add(uint64(len(r.a.Events)))
		s.stats.writes.Add(1)
	default:
		s.stats.writes.Add(1)
	}
	r.done <- err
}

// checkAppend refuses appends that could never commit, before they can
// share (and fail) a group, and estimates the bytes they write.
func checkAppend(a *stream.Append) (int, error) {
	if a.Stream == "" || len(a.Stream) > bbolt.MaxKeySize {
		return 0, fmt.Errorf("%w: stream name must be 1..%d bytes", ErrInvalid, bbolt.MaxKeySize)
	}
	size := 64 + len(a.Stream)
	for i, e := range a.Events {
		if e == nil {
			return 0, fmt.Errorf("%w: event %d of stream %q is nil", ErrInvalid, i, a.Stream)
		}
		size += 8 + valueSize(e)
	}
	if cp := a.Checkpoint; cp != nil {
		if cp.Emitter == "" || len(cp.Emitter) > bbolt.MaxKeySize {
			return 0, fmt.Errorf("%w: checkpoint emitter id must be 1..%d bytes", ErrInvalid, bbolt.MaxKeySize)
		}
		size += len(cp.Emitter) + len(cp.Value)
	}
	return size, nil
}

// arena hands out the keys and values of one transaction. bbolt keeps
// the slices given to Put until commit, so they cannot come from a reused
// scratch buffer; one arena per transaction turns thousands of small
// allocations into a few large ones, reused across transactions.
type arena struct {
	buf []byte
	off int
}

const (
	arenaMin  = 64 << 10
	arenaKeep = 16 << 20
)

func (a *arena) alloc(n int) []byte {
	if a.off+n > len(a.buf) {
		// The old buffer stays referenced by the open transaction; the
		// new one is bigger, so steady state is a single buffer.
		a.buf = make([]byte, max(2*len(a.buf), n, arenaMin))
		a.off = 0
	}
	b := a.buf[a.off : a.off+n : a.off+n]
	a.off += n
	return b
}

func (a *arena) str(s string) []byte {
	b := a.alloc(len(s))
	copy(b, s)
	return b
}

// reset recycles the buffer once the transaction that used it is over.
func (a *arena) reset() {
	a.off = 0
	if len(a.buf) > arenaKeep {
		a.buf = nil
	}
}
