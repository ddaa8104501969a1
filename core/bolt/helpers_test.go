package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// testCtx bounds every test against hangs; it is not a timing assertion.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "store.db")
}

// openT opens a store closed at cleanup (a second Close is harmless).
func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(testCtx(t), path, opts, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func closeT(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// events returns n events of stream with seqs from..from+n-1, one second
// apart from t0 + from seconds.
func events(streamName string, from uint64, n int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		seq := from + uint64(i)
		out[i] = &event.Event{
			Stream: streamName,
			Seq:    seq,
			Type:   "tick",
			Time:   t0.Add(time.Duration(seq) * time.Second),
			Data:   json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq)),
		}
	}
	return out
}

func commitT(t testing.TB, s *Store, a stream.Append) {
	t.Helper()
	if err := s.Commit(testCtx(t), a); err != nil {
		t.Fatalf("Commit(%s): %v", a.Stream, err)
	}
}

func seqs(evs []*event.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
