package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
)

// ErrNoSpace means a write failed because the disk or the quota is full.
// It is the domains' "unavailable" (stream.ErrStoreUnavailable and
// queue.ErrUnavailable): nothing of the write stays, and the same write
// succeeds once space is freed, so callers answer 503 and retry.
var ErrNoSpace = fmt.Errorf("bolt: no space left for the store: %w (%w)", stream.ErrStoreUnavailable, queue.ErrUnavailable)

// noSpaceErrnos are the errors of a full disk or quota.
var noSpaceErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT}

// storageErr marks err as ErrNoSpace when a full disk or quota caused it.
// bbolt formats its file-growth errors with %s, so those keep only the
// text of the errno, which is matched too.
func storageErr(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	msg := err.Error()
	for _, errno := range noSpaceErrnos {
		if errors.Is(err, errno) || strings.Contains(msg, errno.Error()) {
			return fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
	}
	return err
}

// noteSpace remembers whether the last write found the disk full.
func (s *Store) noteSpace(err error) {
	switch {
	case err == nil:
		if s.noSpaceAt.Load() != 0 {
			s.noSpaceAt.Store(0)
		}
	case errors.Is(err, ErrNoSpace):
		s.noSpaceAt.Store(time.Now().UnixNano())
	}
}

// A store whose last write found the disk full is not ready while the
// disk still has less than minFreeBytes free (a journal growth step and
// as much for the B-tree); where free space cannot be read, for
// noSpaceHold after the failure. Either way readiness comes back by
// itself once there is room: it does not wait for a write that an
// orchestrator would no longer send.
const (
	minFreeBytes = 2 * growStep
	noSpaceHold  = 5 * time.Second
)

// spaceReady is Ready's answer about space: ErrNoSpace while the last
// write found the disk full and it still is, else nil.
func (s *Store) spaceReady() error {
	at := s.noSpaceAt.Load()
	if at == 0 {
		return nil
	}
	free, known := freeBytes(filepath.Dir(s.path))
	if (known && free < minFreeBytes) || (!known && time.Since(time.Unix(0, at)) < noSpaceHold) {
		return fmt.Errorf("%w: the last write found the disk full", ErrNoSpace)
	}
	s.noSpaceAt.CompareAndSwap(at, 0)
	return nil
}
