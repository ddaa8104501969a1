package bolt

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// syncDepth is how many journal fdatasyncs the committer keeps in
// flight. While group k syncs, the committer gathers and writes group
// k+1 and starts its sync too: the disks measured merge concurrent
// flushes (one sync alone ~300 µs, ~200 µs per sync with two in flight,
// ~180 µs with four), so overlapping them raises the commit rate and
// shortens the wait of a writer that arrives during a sync. The figures
// that chose the depth are in BENCHMARKS.md ("Journal syncs in flight").
const syncDepth = 2

// overlapBelow gates the overlap: another group is written while syncs
// are in flight only while recent groups held fewer writes than this on
// average, i.e. while writers do not share groups anyway. Two writers
// never share a group on a serial committer (each comes back after the
// other's was taken), so each would wait out the other's sync before its
// own starts: overlapping cuts that wait (1.3x on a quiet disk). Once
// writers share groups, the overlap splits each group into two smaller
// ones and the flushes cost more than the overlap saves: ten writers
// went from 4.3 to 2 writes a group and 1.25x slower per append, and
// the queue at 11-28 writes a group to 0.6x (BENCHMARKS.md, "Journal
// syncs in flight"). The average, not the last group, decides, so that
// one small group under heavy load does not open the way to more.
const overlapBelow = 2

// syncPipe is the committer's window of journal frames written and not
// yet acknowledged, oldest first, with the workers that sync them. Only
// the committer goroutine touches it (the workers get jobs and answer on
// channels), so it needs no lock.
//
// Rules, for "no acknowledged write lost under kill -9":
//   - frames are written in order by the committer alone;
//   - groups are acknowledged (done, journaled hooks, the applier's
//     push) in journal order: a group only once its own sync and every
//     earlier group's succeeded;
//   - a failed sync stops the journal (journal.err) and fails its group
//     and every group behind it, whatever their own syncs said: replay
//     stops at the failed frame, whose length is zeroed;
//   - each worker syncs on a descriptor of its own: Linux reports a
//     writeback error once per open file (errseq), so a sync sharing a
//     descriptor with another could take the error of the other's
//     group and report success for its own.
type syncPipe struct {
	ring    []flight // len depth; ring[head] is the oldest of n
	head, n int
	// avgWrites is a moving average of the writes per group, in
	// 1/16ths (each group weighs 1/8).
	avgWrites int
	seq       uint64 // groups launched so far
	idle      []*syncWorker
	results   chan syncResult // cap depth: a worker never blocks on it
	// broken is the failed sync that fails every group behind it.
	broken error
	seam   *syncSeam
	wg     sync.WaitGroup
}

// flight is one written group waiting for its sync.
type flight struct {
	g     []*request
	buf   *[]byte // the frame; the record starts at frameHdrLen
	offs  []int   // where the group's entries start in the record
	start int64   // the frame's offset, to cut it if its sync fails
	pos   journalPos
	began time.Time
	seq   uint64
	done  bool  // its sync returned
	err   error // what its sync returned
}

type syncWorker struct {
	f    *os.File
	jobs chan syncJob // cap 1: at most one job per worker
}

type syncJob struct {
	slot int
	seq  uint64
}

type syncResult struct {
	slot int
	w    *syncWorker
	err  error
}

// syncSeam lets tests order and fail the workers' syncs (nil in
// production): sync replaces fdatasync for the group numbered seq (1 is
// the first launched), and handled runs on the committer once seq's
// result is taken and every group it could release is acknowledged.
type syncSeam struct {
	sync    func(f *os.File, seq uint64) error
	handled func(seq uint64)
}

// newSyncPipe starts depth workers, each with its own descriptor of the
// journal at path. depth 0 (NoSync) starts none: groups are acknowledged
// as soon as they are written.
func newSyncPipe(path string, depth int, seam *syncSeam) (*syncPipe, error) {
	p := &syncPipe{ring: make([]flight, depth), seam: seam}
	if depth == 0 {
		return p, nil
	}
	p.results = make(chan syncResult, depth)
	for range depth {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("bolt: open journal %s for a sync worker: %w", path, err)
		}
		w := &syncWorker{f: f, jobs: make(chan syncJob, 1)}
		p.idle = append(p.idle, w)
		p.wg.Go(func() { p.work(w) })
	}
	return p, nil
}

// work syncs the journal for each job on w's own descriptor.
func (p *syncPipe) work(w *syncWorker) {
	for j := range w.jobs {
		var err error
		if p.seam != nil && p.seam.sync != nil {
			err = p.seam.sync(w.f, j.seq)
		} else {
			err = fdatasync(w.f)
		}
		p.results <- syncResult{slot: j.slot, w: w, err: err}
	}
}

// on reports whether groups go through workers (false under NoSync).
func (p *syncPipe) on() bool { return len(p.ring) > 0 }

// full reports whether the committer must wait for a sync before it
// writes another group.
func (p *syncPipe) full() bool {
	return p.on() && (p.n == len(p.ring) || (p.n > 0 && p.avgWrites >= overlapBelow*16))
}

// launch queues a written group and starts its sync. The pipe must not
// be full. g and offs are copied: the committer reuses its own.
func (p *syncPipe) launch(g []*request, buf *[]byte, offs []int, start int64, pos journalPos, began time.Time) {
	slot := (p.head + p.n) % len(p.ring)
	p.n++
	p.avgWrites += (len(g)*16 - p.avgWrites) / 8
	p.seq++
	f := &p.ring[slot]
	f.g = append(f.g[:0], g...)
	f.offs = append(f.offs[:0], offs...)
	f.buf, f.start, f.pos, f.began, f.seq = buf, start, pos, began, p.seq
	f.done, f.err = false, nil
	w := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	w.jobs <- syncJob{slot: slot, seq: p.seq}
}

// close stops the workers and closes their descriptors. Only call it
// once nothing is in flight.
func (p *syncPipe) close() error {
	for _, w := range p.idle {
		close(w.jobs)
	}
	p.wg.Wait()
	var first error
	for _, w := range p.idle {
		if err := w.f.Close(); err != nil && first == nil {
			first = fmt.Errorf("bolt: close a journal sync descriptor: %w", err)
		}
	}
	p.idle = nil
	return first
}

// synced takes one finished sync: a failure stops the journal at once
// (no more frames), then every group at the head whose sync is done is
// acknowledged, in order.
func (s *Store) synced(res syncResult) {
	p := s.pipe
	f := &p.ring[res.slot]
	f.done, f.err = true, res.err
	p.idle = append(p.idle, res.w)
	if res.err != nil {
		f.err = storageErr(s.jr.syncFailed(f.start, res.err))
	}
	for p.n > 0 && p.ring[p.head].done {
		s.retire(&p.ring[p.head])
		p.head = (p.head + 1) % len(p.ring)
		p.n--
	}
	if p.seam != nil && p.seam.handled != nil {
		p.seam.handled(f.seq)
	}
}

// retire acknowledges the oldest group: every group before it is
// acknowledged already, so it succeeds unless its own sync or an
// earlier group's failed.
func (s *Store) retire(f *flight) {
	p := s.pipe
	err := f.err
	switch {
	case err != nil && p.broken == nil:
		p.broken = s.jr.err
	case err == nil && p.broken != nil:
		err = fmt.Errorf("bolt: an earlier journal record failed: %w", p.broken)
	}
	if err != nil {
		frameBufs.Put(f.buf)
	} else {
		s.handOver(f.g, f.buf, f.offs, f.pos, f.began)
	}
	for _, r := range f.g {
		s.ack(r, err)
	}
	clear(f.g)
	f.g, f.buf = f.g[:0], nil
}

// drain waits until every group in flight is acknowledged. Whatever
// needs the journal settled waits for it: growing or resetting the
// file (their own syncs), B-tree ops that must see journaled records,
// failures that must not overtake an earlier group's acknowledgement,
// and Close.
func (s *Store) drain() {
	for s.pipe.n > 0 {
		s.synced(<-s.pipe.results)
	}
}
