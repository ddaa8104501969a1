package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// errDiskFull is what the bolt store answers while its disk is full: an
// error that wraps stream.ErrStoreUnavailable.
var errDiskFull = fmt.Errorf("injected: no space left on device: %w", stream.ErrStoreUnavailable)

// fullDisk is a real bbolt store whose disk can fill: while full, every
// commit and every checkpoint read fails, as bolt's do once neither the
// journal nor the B-tree can be written.
type fullDisk struct {
	*bolt.Store
	full atomic.Bool
}

func (f *fullDisk) Commit(ctx context.Context, a stream.Append) error {
	if f.full.Load() {
		return errDiskFull
	}
	return f.Store.Commit(ctx, a)
}

// Submit fails like Commit: the stream submits through it.
func (f *fullDisk) Submit(ctx context.Context, a stream.Append) (func() error, error) {
	if f.full.Load() {
		return nil, errDiskFull
	}
	return f.Store.Submit(ctx, a)
}

func (f *fullDisk) Checkpoint(ctx context.Context, id string) ([]byte, error) {
	if f.full.Load() {
		return nil, errDiskFull
	}
	return f.Store.Checkpoint(ctx, id)
}

// boltEnv is a manager over a real bbolt file.
type boltEnv struct {
	store *fullDisk
	hub   *stream.Hub
	m     *emitter.Manager
}

func openBoltEnv(t *testing.T, path string) *boltEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := bolt.Open(ctxT(t), path, bolt.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &boltEnv{store: &fullDisk{Store: st}}
	e.hub = stream.NewHub(e.store, log, stream.HubOptions{})
	e.m = emitter.NewManager(e.store, newRunner(), e.hub, log)
	if err := e.m.Restore(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *boltEnv) close(t *testing.T) {
	t.Helper()
	if err := errors.Join(e.m.Close(ctxT(t)), e.hub.Close(ctxT(t)), e.store.Close(ctxT(t))); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func (e *boltEnv) next(ctx context.Context) (int, error) {
	res, err := e.m.Command(ctx, "c", "next", nil)
	if err != nil {
		return 0, err
	}
	var r struct{ N int }
	return r.N, json.Unmarshal(res, &r)
}

// Commands that fail because the disk is full leave no trace: once it has
// room again the count goes on from the last durable one, the stream's
// seqs have no hole, and a restart answers the same as no restart.
func TestFullDiskCommandsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s.db")
	e := openBoltEnv(t, path)
	if _, err := e.m.Create(ctxT(t), emitter.CreateRequest{ID: "c", Kind: "counter", Retention: &emitter.Retention{Persist: true}}); err != nil {
		t.Fatal(err)
	}
	st, err := e.m.Stream("c")
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.After(0))
	defer sub.Close()
	want := 0
	check := func(phase string) {
		t.Helper()
		n, err := e.next(ctxT(t))
		want++
		if err != nil || n != want {
			t.Fatalf("%s: next = %d, %v; want %d", phase, n, err, want)
		}
	}
	check("before")
	check("before")
	e.store.full.Store(true)
	for range 3 {
		if _, err := e.next(ctxT(t)); !errors.Is(err, stream.ErrStoreUnavailable) {
			t.Fatalf("next on a full disk: %v, want ErrStoreUnavailable", err)
		}
	}
	e.store.full.Store(false)
	check("after the disk has room")
	evs := readAll(t, sub, want)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || string(ev.Data) != fmt.Sprintf(`{"n":%d}`, i+1) {
			t.Fatalf("event %d: seq %d data %s; want seq %d n %d (no hole, no skipped count)", i, ev.Seq, ev.Data, i+1, i+1)
		}
	}
	sub.Close()
	e.close(t)

	e = openBoltEnv(t, path)
	defer e.close(t)
	check("after a restart")
}

func readAll(t *testing.T, sub *stream.Subscription, n int) []*event.Event {
	t.Helper()
	var out []*event.Event
	for len(out) < n {
		evs, err := sub.Next(ctxT(t), nil)
		if err != nil {
			t.Fatalf("next after %d events: %v", len(out), err)
		}
		out = append(out, evs...)
	}
	return out
}
