package bolt

import (
	"errors"
	"os"
	"testing"
)

// After a failed fdatasync the journal takes no more writes: the kernel
// may have dropped the pages, and a later sync could report success for
// data that is gone. (/dev/null takes writes but refuses fdatasync.)
func TestJournalStopsAfterFailedSync(t *testing.T) {
	t.Parallel()
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{f: f, path: os.DevNull, gen: 1, size: journalHdrLen, alloc: 1 << 30}
	defer j.close()
	frame := append(make([]byte, frameHdrLen), "rec"...)
	if _, err := j.append(frame); err == nil {
		t.Fatal("append to /dev/null succeeded: fdatasync should have failed (EINVAL on Linux)")
	}
	first := j.err
	if first == nil {
		t.Fatal("a failed fdatasync did not stop the journal")
	}
	if _, err := j.append(frame); !errors.Is(err, first) && err != first {
		t.Fatalf("append after a failed sync: %v, want the first failure %v", err, first)
	}
}
