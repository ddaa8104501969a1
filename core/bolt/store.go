// Package bolt is the bbolt adapter of sidestream: one file holds emitter
// specs, checkpoints, stream heads and per-stream history. Every write
// goes through one committer goroutine that groups whatever is queued
// (group commit), so concurrent writers share one fsync and nobody is
// acknowledged before its data is durable. Groups of stream appends and
// queue posts and deletes are made durable in a write-ahead journal
// beside the file and written into the B-tree in the background (see
// journal.go); history reads wait for that, queue reads look at what is
// not applied yet (queue_journal.go), so a reader sees every write
// acknowledged before it started.
package bolt

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
)

var (
	_ stream.Store      = (*Store)(nil)
	_ emitter.SpecStore = (*Store)(nil)
)

// Errors of the store.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("bolt: store closed")
	// ErrForeignFile means the file is a bbolt database some other program
	// owns; it is left untouched.
	ErrForeignFile = errors.New("bolt: not a sidestream store")
	// ErrCorrupt means the file is not a readable bbolt database; it is
	// left untouched.
	ErrCorrupt = errors.New("bolt: file is not a valid bbolt database")
	// ErrLocked means another process holds the file open.
	ErrLocked = errors.New("bolt: file is locked by another process")
	// ErrSchemaTooNew means the file was written by a newer sidestream.
	ErrSchemaTooNew = errors.New("bolt: store schema is newer than this build")
	// ErrInvalid reports an argument the store refuses (empty ids, nil
	// events, oversize keys).
	ErrInvalid = errors.New("bolt: invalid argument")
)

// Defaults of Options.
const (
	DefaultMaxBatch      = 1024
	DefaultMaxBatchBytes = 8 << 20
	DefaultLockTimeout   = time.Second
	// DefaultJournalMaxBytes is the journal size past which it is
	// emptied (once applied) and started over.
	DefaultJournalMaxBytes = 64 << 20
	// MaxReadLimit caps the limit of ReadAfter and ReadBefore.
	MaxReadLimit = 10000
)

// Options tune a Store. The zero value is ready for production.
type Options struct {
	// NoSync skips fsync. Only for tests and benchmarks: a crash loses
	// acknowledged writes.
	NoSync bool
	// MaxBatch bounds the writes grouped into one transaction.
	MaxBatch int
	// MaxBatchBytes bounds the approximate payload of one transaction; a
	// single larger write still commits, alone.
	MaxBatchBytes int
	// JournalMaxBytes bounds the journal file (default
	// DefaultJournalMaxBytes).
	JournalMaxBytes int64
	// LockTimeout is how long Open waits for another process to release
	// the file before failing with ErrLocked.
	LockTimeout time.Duration
	// OnCommit, if set, is told each committed transaction's duration and
	// number of writes (telemetry; called on the committer goroutine, so
	// it must be quick).
	OnCommit func(d time.Duration, writes int)
	// Trace, if set, wraps every Commit call, e.g. in a span; end is
	// called with Commit's result.
	Trace func(ctx context.Context, name string) (_ context.Context, end func(error))

	// applyLinger overrides how long a journaled record may wait for
	// the applier (tests hold records in the journal with it).
	applyLinger time.Duration
	// syncDepth overrides how many journal syncs may be in flight
	// (benchmarks compare depths with it); syncSeam lets tests order
	// and fail those syncs.
	syncDepth int
	syncSeam  *syncSeam
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.JournalMaxBytes <= 0 {
		o.JournalMaxBytes = DefaultJournalMaxBytes
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	return o
}

// Stats counts the store's write activity since Open.
type Stats struct {
	// Transactions is the number of durable commits writers waited
	// for: journal records (one fdatasync) and B-tree transactions of
	// the committer (bbolt syncs data then meta), unless NoSync.
	Transactions uint64
	// Applies is the number of background transactions that wrote
	// journal records into the B-tree, and ApplyTime their total time.
	Applies   uint64
	ApplyTime time.Duration
	// Appends is the number of stream appends committed.
	Appends uint64
	// Events is the number of history events committed.
	Events uint64
	// Writes is every write acknowledged without error: appends plus
	// spec, prune and delete operations.
	Writes uint64
	// Failed is the number of writes acknowledged with an error.
	Failed uint64
	// Replays counts failed groups re-run one write per transaction.
	Replays uint64
	// MaxGroup is the largest number of writes seen in one transaction.
	MaxGroup uint64
}

type counters struct {
	txs, appends, events, writes, failed, replays, maxGroup atomic.Uint64
	applyTxs, applyNanos                                    atomic.Uint64
}

// Store is a sidestream store in one bbolt file. It implements
// stream.Store and emitter.SpecStore and is safe for concurrent use.
type Store struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger
	opts Options
	jr   *journal
	ap   *applier
	pipe *syncPipe // journal syncs in flight (committer only)

	reqs      chan *request
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// lastQueueRec is the number of the last journal record holding
	// a queue entry (committer only): queue ops wait for it.
	lastQueueRec uint64
	entryOffs    []int // committer scratch: where a group's entries start
	fence        fence // appends behind a failed one (fence.go)
	// queueApplied, once a queue driver exists, is told how many
	// journal records are in the B-tree, before readers waiting for
	// them are (see QueueDriver.applied).
	queueApplied atomic.Pointer[func(upTo uint64)]
	queuesMu     sync.Mutex
	queues       *QueueDriver

	stats counters
	// noSpaceAt is when a write last failed for a full disk (unix
	// nanoseconds; 0: the last write found room), for Ready.
	noSpaceAt atomic.Int64
}

// Stats returns a snapshot of the write counters.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Transactions: c.txs.Load(),
		Appends:      c.appends.Load(),
		Events:       c.events.Load(),
		Writes:       c.writes.Load(),
		Failed:       c.failed.Load(),
		Replays:      c.replays.Load(),
		MaxGroup:     c.maxGroup.Load(),
		Applies:      c.applyTxs.Load(),
		ApplyTime:    time.Duration(c.applyNanos.Load()),
	}
}

// Ready reports whether the store can serve: ErrApply while writing the
// journal into the B-tree fails (a full disk, a damaged file), ErrClosed
// after Close, else nil. It is cheap enough for every readiness probe.
func (s *Store) Ready() error {
	if s.closed() {
		return ErrClosed
	}
	if err := s.ap.failed(); err != nil {
		return err
	}
	return s.spaceReady()
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close stops accepting writes, lets the committer finish the group it
// holds, and closes the file. If ctx ends first Close returns its error;
// the committer still closes the file once its transaction ends.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.quit) })
	select {
	case <-s.done:
		return s.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// dbErr turns bbolt's closed-database error into ErrClosed.
func dbErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
