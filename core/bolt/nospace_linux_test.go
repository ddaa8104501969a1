package bolt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
)

// A journal whose disk is full fails the append with the domains'
// "unavailable" (503, not 500), whether the file had to grow or not, and
// leaves nothing behind: once there is room the next append takes its
// place, and a reopen replays only what was acknowledged.
func TestFullDiskAppendIsUnavailableAndLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, grow := range []bool{true, false} {
		t.Run(fmt.Sprintf("grow=%v", grow), func(t *testing.T) {
			t.Parallel()
			path := tempPath(t)
			s := openT(t, path, Options{})
			commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 2), Head: 2})
			if !grow {
				s.jr.alloc = s.jr.size + growStep
			}
			err := commitOnFullDisk(t, s, stream.Append{Stream: "s", Events: events("s", 3, 1), Head: 3})
			if !errors.Is(err, ErrNoSpace) || !errors.Is(err, stream.ErrStoreUnavailable) ||
				!errors.Is(err, queue.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("commit on a full disk: %v, want ErrNoSpace (unavailable) wrapping ENOSPC", err)
			}
			if !grow {
				s.jr.alloc = s.jr.size // what /dev/full did not write is not allocated
			}
			commitT(t, s, stream.Append{Stream: "s", Events: events("s", 3, 1), Head: 3})
			closeT(t, s)

			s = openT(t, path, Options{})
			evs, err := s.ReadAfter(testCtx(t), "s", 0, 10)
			if err != nil || fmt.Sprint(seqs(evs)) != "[1 2 3]" {
				t.Fatalf("after reopen: %v %v, want [1 2 3]", seqs(evs), err)
			}
		})
	}
}

// commitOnFullDisk commits a with the journal's file swapped for
// /dev/full, whose writes fail with ENOSPC. The committer uses the
// journal only between taking a request and answering it, so swapping
// the file between commits is ordered by those channel operations.
func commitOnFullDisk(t *testing.T, s *Store, a stream.Append) error {
	t.Helper()
	full, err := os.OpenFile("/dev/full", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/full (Linux always has it): %v", err)
	}
	defer full.Close()
	real := s.jr.f
	s.jr.f = full
	defer func() { s.jr.f = real }()
	return s.Commit(testCtx(t), a)
}

func TestStorageErrMapsOnlyFullDisks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		full bool
	}{
		{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("grow: %w", syscall.EDQUOT), true},
		// bbolt: fmt.Errorf("file resize error: %s", err)
		{fmt.Errorf("file resize error: %s", &os.PathError{Op: "truncate", Path: "x", Err: syscall.ENOSPC}), true},
		{syscall.EIO, false},
		{ErrInvalid, false},
		{nil, false},
	} {
		got := storageErr(tc.err)
		if errors.Is(got, ErrNoSpace) != tc.full || !errors.Is(got, tc.err) {
			t.Errorf("storageErr(%v) = %v; full disk: %v", tc.err, got, tc.full)
		}
	}
}

// An append whose events follow those of a failed append of its stream
// is refused, even though the disk has room again: a stream keeps a
// second commit in flight, and keeping it would leave a hole. The failed
// seqs, handed out again, commit, and lift the fence; other streams are
// never held.
func TestAppendBehindAFailedOneIsFenced(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	ctx := testCtx(t)
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 2), Head: 2})
	err := commitOnFullDisk(t, s, stream.Append{Stream: "s", Events: events("s", 3, 2), Head: 4})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("commit on a full disk: %v, want ErrNoSpace", err)
	}
	s.jr.alloc = s.jr.size

	err = s.Commit(ctx, stream.Append{Stream: "s", Events: events("s", 5, 1), Head: 5})
	if !errors.Is(err, ErrFenced) || !errors.Is(err, stream.ErrStoreUnavailable) {
		t.Fatalf("append after the failed one: %v, want ErrFenced (unavailable)", err)
	}
	commitT(t, s, stream.Append{Stream: "other", Events: events("other", 7, 1), Head: 7})
	commitT(t, s, stream.Append{Stream: "s", Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("x")}})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 3, 1), Head: 3})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 4, 1), Head: 4})
	closeT(t, s)

	s = openT(t, path, Options{})
	evs, err := s.ReadAfter(testCtx(t), "s", 0, 10)
	if err != nil || fmt.Sprint(seqs(evs)) != "[1 2 3 4]" {
		t.Fatalf("after reopen: %v %v, want [1 2 3 4]", seqs(evs), err)
	}
}
