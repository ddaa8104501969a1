package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/sidestream/sidestream/core/stream"
)

// heldSyncs is a syncSeam whose syncs of chosen groups wait for the
// test: a held group's sync returns (its error, else the real
// fdatasync's) once released. Other groups sync at once.
type heldSyncs struct {
	held    map[uint64]chan error // seq -> release (send the sync's error)
	entered chan uint64
	handled chan uint64
}

func newHeldSyncs(seqs ...uint64) *heldSyncs {
	h := &heldSyncs{held: map[uint64]chan error{}, entered: make(chan uint64, 64), handled: make(chan uint64, 64)}
	for _, seq := range seqs {
		h.held[seq] = make(chan error, 1)
	}
	return h
}

func (h *heldSyncs) seam() *syncSeam {
	return &syncSeam{
		sync: func(f *os.File, seq uint64) error {
			release := h.held[seq] // read only once the test started
			h.entered <- seq
			if release != nil {
				if err := <-release; err != nil {
					return err
				}
			}
			return fdatasync(f)
		},
		handled: func(seq uint64) { h.handled <- seq },
	}
}

// await receives from ch until it yields want, bounded by the test's
// context (a hang guard, not a timing assertion).
func await(t *testing.T, what string, ch <-chan uint64, want uint64) {
	t.Helper()
	ctx := testCtx(t)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s of group %d: %v", what, want, ctx.Err())
		}
	}
}

// commitAsync commits one event to its own stream and reports the
// result on the returned channel.
func commitAsync(s *Store, name string) <-chan error {
	res := make(chan error, 1)
	go func() {
		res <- s.Commit(context.Background(), stream.Append{Stream: name, Events: events(name, 1, 1), Head: 1})
	}()
	return res
}

// startGroups commits one append per name, each in a group of its own
// (the next is sent once the previous one's sync has started), and
// returns their results in order. Group numbers start at first.
func startGroups(t *testing.T, s *Store, h *heldSyncs, first uint64, names ...string) []<-chan error {
	t.Helper()
	var res []<-chan error
	for i, name := range names {
		res = append(res, commitAsync(s, name))
		await(t, "the sync", h.entered, first+uint64(i))
	}
	return res
}

func result(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-testCtx(t).Done():
		t.Fatal("a commit never returned")
		return nil
	}
}

// eventsOf returns the seqs stored for stream name.
func eventsOf(t *testing.T, s *Store, name string) string {
	t.Helper()
	evs, err := s.ReadAfter(testCtx(t), name, 0, 10)
	if err != nil {
		t.Fatalf("ReadAfter(%s): %v", name, err)
	}
	return fmt.Sprint(seqs(evs))
}

// Groups whose syncs finish out of order are acknowledged in journal
// order: a group is not acknowledged (nor handed to the applier) while
// an earlier group's sync is still running, even if its own is done.
func TestJournalAcksGroupsInOrderWhenSyncsFinishOutOfOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		depth   int
		release []uint64 // the order the held syncs finish in
	}{
		{2, []uint64{2, 1}},
		{3, []uint64{3, 2, 1}},
		{3, []uint64{2, 3, 1}},
		{3, []uint64{1, 3, 2}},
	} {
		t.Run(fmt.Sprintf("depth=%d/finish=%v", tc.depth, tc.release), func(t *testing.T) {
			t.Parallel()
			h := newHeldSyncs(tc.release...)
			path := tempPath(t)
			s := openT(t, path, Options{syncDepth: tc.depth, syncSeam: h.seam()})
			var names []string
			for i := range tc.release {
				names = append(names, fmt.Sprintf("s%d", i+1))
			}
			res := startGroups(t, s, h, 1, names...)
			done := map[uint64]bool{}
			for _, seq := range tc.release {
				h.held[seq] <- nil
				await(t, "the acknowledgement", h.handled, seq)
				done[seq] = true
				prefix := uint64(0)
				for done[prefix+1] {
					prefix++
				}
				if got := s.Stats().Appends; got != prefix {
					t.Fatalf("after the sync of group %d (finished %v): %d groups acknowledged, want %d (the groups before the first unsynced one)", seq, done, got, prefix)
				}
				if got := s.ap.handedCount(); got != prefix {
					t.Fatalf("after the sync of group %d: %d records handed to the applier, want %d", seq, got, prefix)
				}
			}
			for i, ch := range res {
				if err := result(t, ch); err != nil {
					t.Fatalf("commit %d: %v", i+1, err)
				}
			}
			closeT(t, s)
			s = openT(t, path, Options{})
			for _, name := range names {
				if got := eventsOf(t, s, name); got != "[1]" {
					t.Fatalf("after reopen, stream %s: %s, want [1]", name, got)
				}
			}
		})
	}
}

// A failed sync fails its group and every group behind it, even one
// whose own sync succeeded, while a group before it that synced stays
// acknowledged; the journal then takes no more writes, and a reopen
// replays exactly the acknowledged groups.
func TestJournalFailedSyncFailsEveryGroupBehindIt(t *testing.T) {
	t.Parallel()
	eio := syscall.EIO
	for _, tc := range []struct {
		name      string
		finish    []uint64         // held groups (2: a, 3: b), in the order they finish
		errs      map[uint64]error // their syncs' errors
		wantA     bool             // a acknowledged (else failed)
		wantAfter map[string]string
	}{
		{"earlier fails after the later synced", []uint64{3, 2}, map[uint64]error{2: eio}, false,
			map[string]string{"seed": "[1]", "a": "[]", "b": "[]"}},
		{"later fails before the earlier synced", []uint64{3, 2}, map[uint64]error{3: eio}, true,
			map[string]string{"seed": "[1]", "a": "[1]", "b": "[]"}},
		{"earlier fails first", []uint64{2, 3}, map[uint64]error{2: eio}, false,
			map[string]string{"seed": "[1]", "a": "[]", "b": "[]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHeldSyncs(2, 3)
			path := tempPath(t)
			s := openT(t, path, Options{syncSeam: h.seam()})
			commitT(t, s, stream.Append{Stream: "seed", Events: events("seed", 1, 1), Head: 1}) // group 1
			res := startGroups(t, s, h, 2, "a", "b")
			for _, seq := range tc.finish {
				h.held[seq] <- tc.errs[seq]
				await(t, "the acknowledgement", h.handled, seq)
			}
			errA, errB := result(t, res[0]), result(t, res[1])
			if (errA == nil) != tc.wantA {
				t.Fatalf("group a: %v, want acknowledged: %v", errA, tc.wantA)
			}
			if errB == nil {
				t.Fatal("group b was acknowledged behind a failed sync")
			}
			if !errors.Is(errB, eio) {
				t.Fatalf("group b: %v, want the failed sync's EIO", errB)
			}
			err := s.Commit(testCtx(t), stream.Append{Stream: "c", Events: events("c", 1, 1), Head: 1})
			if err == nil || !errors.Is(err, eio) {
				t.Fatalf("commit after a failed sync: %v, want the journal stopped with EIO", err)
			}
			closeT(t, s)

			s = openT(t, path, Options{})
			for name, want := range tc.wantAfter {
				if got := eventsOf(t, s, name); got != want {
					t.Fatalf("after reopen, stream %s: %s, want %s", name, got, want)
				}
			}
			commitT(t, s, stream.Append{Stream: "b", Events: events("b", 1, 1), Head: 1})
		})
	}
}

// Close waits for the syncs in flight: a group whose sync finishes
// during Close is acknowledged and survives the reopen.
func TestCloseWaitsForJournalSyncsInFlight(t *testing.T) {
	t.Parallel()
	h := newHeldSyncs(1)
	path := tempPath(t)
	s := openT(t, path, Options{syncSeam: h.seam()})
	res := startGroups(t, s, h, 1, "a")
	closed := make(chan error, 1)
	go func() { closed <- s.Close(testCtx(t)) }()
	h.held[1] <- nil
	if err := result(t, res[0]); err != nil {
		t.Fatalf("commit whose sync finished during Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openT(t, path, Options{})
	if got := eventsOf(t, s, "a"); got != "[1]" {
		t.Fatalf("after reopen: %s, want [1]", got)
	}
}

// A B-tree op waits for the journal syncs in flight: a stream delete
// sent while an append of that stream is still syncing runs after the
// append is durable and applied, so it deletes it, also after a reopen.
func TestOpWaitsForTheJournalSyncsInFlight(t *testing.T) {
	t.Parallel()
	h := newHeldSyncs(1)
	path := tempPath(t)
	s := openT(t, path, Options{syncSeam: h.seam()})
	res := startGroups(t, s, h, 1, "a")
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteStream(context.Background(), "a") }()
	h.held[1] <- nil
	if err := result(t, res[0]); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := result(t, deleted); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if got := eventsOf(t, s, "a"); got != "[]" {
		t.Fatalf("after the delete: %s, want [] (the delete ran before the append it follows)", got)
	}
	closeT(t, s)
	s = openT(t, path, Options{})
	if got := eventsOf(t, s, "a"); got != "[]" {
		t.Fatalf("after reopen: %s, want []", got)
	}
}
