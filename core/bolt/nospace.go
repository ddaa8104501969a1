package bolt

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

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
