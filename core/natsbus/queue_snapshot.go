package natsbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/queue/memq"
)

// Snapshots bound the log. The node that proposed the entry at every
// SnapshotEvery-th seq writes its state as of that seq to the object
// store as "state-<seq>", points the KV key "latest" at it (only ever
// forward: a compare-and-set on the key's revision), then purges the log
// below the pointed-to seq and deletes the snapshot it replaced. A node
// loads the snapshot "latest" names and replays the log after it. The
// log is only ever purged below a stored snapshot that "latest" already
// names, so that snapshot plus the log always make up the whole state. A
// node that reads an older pointer (a replica behind) finds the log
// starting after it and loads again.

const (
	snapPrefix = "state-"
	latestKey  = "latest"
)

type snapshotter struct {
	d    *QueueDriver
	obs  jetstream.ObjectStore
	kv   jetstream.KeyValue
	busy atomic.Bool
	wg   sync.WaitGroup
}

func newSnapshotter(ctx context.Context, d *QueueDriver) (*snapshotter, error) {
	bucket := d.o.Stream + "_SNAP"
	obs, err := d.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bucket, Storage: jetstream.FileStorage, Replicas: d.o.Replicas,
		Description: "sidestream queues: snapshots of the queue log's state",
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: queue snapshot store: %w", err)
	}
	kv, err := d.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Storage: jetstream.FileStorage, Replicas: d.o.Replicas, History: 1,
		Description: "sidestream queues: which snapshot is the newest",
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: queue snapshot pointer: %w", err)
	}
	return &snapshotter{d: d, obs: obs, kv: kv}, nil
}

func snapName(seq uint64) string { return fmt.Sprintf("%s%020d", snapPrefix, seq) }

// latest returns the newest snapshot's seq (0: none) and the pointer's
// revision (0: no pointer yet).
func (s *snapshotter) latest(ctx context.Context) (seq, rev uint64, err error) {
	e, err := s.kv.Get(ctx, latestKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("natsbus: queue snapshot pointer: %w", err)
	}
	seq, err = strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("natsbus: queue snapshot pointer %q: %w", e.Value(), err)
	}
	return seq, e.Revision(), nil
}

// load returns the newest snapshot's state and seq (an empty state at 0
// when there is none). A snapshot deleted while it is read (a newer one
// replaced it) is looked up again.
func (s *snapshotter) load(ctx context.Context) (*memq.State, uint64, error) {
	for range 5 {
		seq, _, err := s.latest(ctx)
		if err != nil || seq == 0 {
			return memq.New(), 0, err
		}
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

// store writes the snapshot of seq, moves the pointer to it, purges the
// log below it and deletes the snapshot it replaced.
func (s *snapshotter) store(seq uint64, data []byte) error {
	ctx, cancel := context.WithTimeout(s.d.bg, 4*s.d.o.Timeout)
	defer cancel()
	if _, err := s.obs.PutBytes(ctx, snapName(seq), data); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	prev, err := s.advance(ctx, seq)
	if err != nil || prev >= seq {
		// Not ours to keep: a newer snapshot is the latest (or unknown).
		_ = s.obs.Delete(ctx, snapName(seq))
		return err
	}
	st, err := s.d.js.Stream(ctx, s.d.o.Stream)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if prev > 0 {
		if err := s.obs.Delete(ctx, snapName(prev)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("delete snapshot %d: %w", prev, err)
		}
	}
	s.d.log.Debug("queue snapshot stored", "seq", seq, "bytes", len(data))
	return nil
}

// advance points "latest" at seq unless it names a newer one; it returns
// the seq it named before.
func (s *snapshotter) advance(ctx context.Context, seq uint64) (uint64, error) {
	val := []byte(strconv.FormatUint(seq, 10))
	var err error
	for range 10 {
		var prev, rev uint64
		if prev, rev, err = s.latest(ctx); err != nil || prev >= seq {
			return prev, err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, latestKey, val)
		} else {
			_, err = s.kv.Update(ctx, latestKey, val, rev)
		}
		if err == nil {
			return prev, nil
		}
	}
	return seq, fmt.Errorf("move snapshot pointer: %w", err)
}

func (s *snapshotter) wait() { s.wg.Wait() }
