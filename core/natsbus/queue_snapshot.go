package natsbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/queue/memq"
)

// Snapshots bound the log. The node that proposed the entry at every
// SnapshotEvery-th seq writes its state as of that seq to the object
// store as "state-<seq>", then purges the log below it and deletes older
// snapshots. A node loads the newest snapshot and replays the log after
// it. The log is only ever purged up to a snapshot that is already
// stored, and the newest snapshot is never deleted, so the newest one
// plus the log always make up the whole state.

const snapPrefix = "state-"

type snapshotter struct {
	d    *QueueDriver
	obs  jetstream.ObjectStore
	busy atomic.Bool
	wg   sync.WaitGroup
}

func newSnapshotter(ctx context.Context, d *QueueDriver) (*snapshotter, error) {
	obs, err := d.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: d.o.Stream + "_SNAP", Storage: jetstream.FileStorage, Replicas: d.o.Replicas,
		Description: "sidestream queues: snapshots of the queue log's state",
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: queue snapshot store: %w", err)
	}
	return &snapshotter{d: d, obs: obs}, nil
}

func snapName(seq uint64) string { return fmt.Sprintf("%s%020d", snapPrefix, seq) }

// snapshots lists the stored snapshots' seqs, newest last.
func (s *snapshotter) snapshots(ctx context.Context) ([]uint64, error) {
	infos, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsbus: list queue snapshots: %w", err)
	}
	var seqs []uint64
	for _, in := range infos {
		if seq, err := strconv.ParseUint(strings.TrimPrefix(in.Name, snapPrefix), 10, 64); err == nil && !in.Deleted {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// load returns the newest snapshot's state and seq (an empty state at 0
// when there is none). A snapshot deleted while it is read (a newer one
// replaced it) is looked up again.
func (s *snapshotter) load(ctx context.Context) (*memq.State, uint64, error) {
	for range 5 {
		seqs, err := s.snapshots(ctx)
		if err != nil {
			return nil, 0, err
		}
		if len(seqs) == 0 {
			return memq.New(), 0, nil
		}
		seq := seqs[len(seqs)-1]
		data, err := s.obs.GetBytes(ctx, snapName(seq))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("natsbus: read queue snapshot %d: %w", seq, err)
		}
		st, err := memq.ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return nil, 0, fmt.Errorf("natsbus: queue snapshot %d: %w", seq, err)
		}
		return st, seq, nil
	}
	return nil, 0, errors.New("natsbus: queue snapshots keep changing under the reader")
}

// take encodes the state (the applier calls it right after applying seq,
// so nothing moves) and stores it in the background; a snapshot still
// being stored makes it skip this one.
func (s *snapshotter) take(seq uint64) {
	if !s.busy.CompareAndSwap(false, true) {
		return
	}
	var buf bytes.Buffer
	s.d.smu.RLock()
	err := s.d.st.WriteSnapshot(&buf)
	s.d.smu.RUnlock()
	if err != nil {
		s.busy.Store(false)
		s.d.log.Error("queue snapshot failed", "seq", seq, "err", err)
		return
	}
	s.wg.Go(func() {
		defer s.busy.Store(false)
		if err := s.store(seq, buf.Bytes()); err != nil && !s.d.closed() {
			s.d.log.Warn("queue snapshot not stored; the log keeps its entries", "seq", seq, "err", err)
		}
	})
}

// store writes the snapshot of seq, purges the log below it and deletes
// the snapshots it replaces.
func (s *snapshotter) store(seq uint64, data []byte) error {
	ctx, cancel := context.WithTimeout(s.d.bg, 4*s.d.o.Timeout)
	defer cancel()
	if _, err := s.obs.PutBytes(ctx, snapName(seq), data); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	st, err := s.d.js.Stream(ctx, s.d.o.Stream)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	seqs, err := s.snapshots(ctx)
	if err != nil {
		return err
	}
	for _, old := range seqs {
		if old < seq {
			if err := s.obs.Delete(ctx, snapName(old)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return fmt.Errorf("delete snapshot %d: %w", old, err)
			}
		}
	}
	s.d.log.Debug("queue snapshot stored", "seq", seq, "bytes", len(data))
	return nil
}

func (s *snapshotter) wait() { s.wg.Wait() }
