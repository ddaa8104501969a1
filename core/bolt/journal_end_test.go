package bolt

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sidestream/sidestream/core/stream"
)

// logBuf is a slog handler target that tests can read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const damagedMsg = "journal ends in a damaged record"

// reopenLogged opens path with a logger into a fresh buffer, closes it,
// and returns what it logged.
func reopenLogged(t *testing.T, path string, opts Options) string {
	t.Helper()
	var lb logBuf
	s, err := Open(testCtx(t), path, opts, slog.New(slog.NewTextHandler(&lb, nil)))
	if err != nil {
		t.Fatal(err)
	}
	closeT(t, s)
	return lb.String()
}

// A journal that ends cleanly, in the zero-filled space ahead of the
// writes or in frames an older generation left in the reused file, is not
// reported as damage on any restart; a torn tail still is, with its
// offset.
func TestJournalCleanEndIsNotDamage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		n    int
	}{
		{"preallocated zeros", Options{}, 20},
		// A small journal starts over many times: the file is reused,
		// older generations' frames lie past the newest one's end.
		{"stale frames of older generations", Options{JournalMaxBytes: 4 << 10}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tempPath(t)
			for round := range 3 {
				s := openT(t, path, tc.opts)
				for i := range tc.n {
					seq := uint64(round*tc.n + i + 1)
					commitT(t, s, stream.Append{Stream: "s", Events: events("s", seq, 1), Head: seq})
				}
				closeT(t, s)
				if logs := reopenLogged(t, path, tc.opts); strings.Contains(logs, damagedMsg) {
					t.Fatalf("round %d: a clean shutdown reported as damage:\n%s", round, logs)
				}
			}
		})
	}
	t.Run("torn tail", func(t *testing.T) {
		t.Parallel()
		path := tempPath(t)
		s := openT(t, path, Options{})
		commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 1), Head: 1})
		closeT(t, s)
		end := tearJournalTail(t, path+JournalSuffix)
		logs := reopenLogged(t, path, Options{})
		if !strings.Contains(logs, damagedMsg) || !strings.Contains(logs, fmt.Sprintf("offset=%d ", end)) {
			t.Fatalf("a torn tail at offset %d not reported with its offset:\n%s", end, logs)
		}
	})
}
