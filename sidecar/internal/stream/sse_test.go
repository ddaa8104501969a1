package streamhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"log/slog"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingWriter records every Write and Flush, like a response body.
type countingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	flushes int
	wrote   chan struct{}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *countingWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushes++
	return nil
}

func (w *countingWriter) snapshot() (string, int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes, w.flushes
}

func newHub(t testing.TB) *stream.Hub {
	t.Helper()
	ctx := context.Background()
	store, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(store, slog.New(slog.DiscardHandler), stream.HubOptions{})
	t.Cleanup(func() {
		_ = hub.Close(ctx)
		_ = store.Close(ctx)
	})
	return hub
}

func drafts(n int) []event.Draft {
	d := make([]event.Draft, n)
	for i := range d {
		d[i] = event.Draft{Type: "line", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return d
}

// A burst queued before the writer runs goes out in far fewer writes than
// events (one per Next), each followed by a flush, in seq order; events
// are on the default type unless the subscriber asked for types.
func TestSSECoalescesQueuedBurst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		typed bool
		frame string // id, n
	}{
		{"default type", false, "id:%d\ndata:{\"n\":%d}\n\n"},
		{"event types", true, "id:%d\nevent:line\ndata:{\"n\":%d}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, writes, flushes := serveBurst(t, 500, tc.typed)
			if !strings.HasPrefix(out, "retry:1500\n\n") {
				t.Fatalf("retry line not first: %q", out[:min(40, len(out))])
			}
			// retry + the burst: a burst of n takes one write (MaxBatch >= n).
			if writes > 2 || writes >= 500 {
				t.Fatalf("%d writes for %d queued events, want coalesced (<= 2)", writes, 500)
			}
			if flushes != writes {
				t.Fatalf("flushes %d != writes %d", flushes, writes)
			}
			if !tc.typed && strings.Contains(out, "event:") {
				t.Fatalf("an event: field on the default type: %q", out[:min(80, len(out))])
			}
			for i := 1; i <= 500; i++ {
				want := fmt.Sprintf(tc.frame, i, i-1)
				if !strings.Contains(out, want) {
					t.Fatalf("missing frame %q", want)
				}
			}
		})
	}
}

// serveBurst publishes n events, serves them to one SSE subscriber until
// all are written and returns what it wrote.
func serveBurst(t *testing.T, n int, typed bool) (out string, writes, flushes int) {
	t.Helper()
	hub := newHub(t)
	ctx := context.Background()
	st, err := hub.Open(ctx, "burst", stream.Config{Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(ctx, drafts(n), nil); err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.After(0))
	defer sub.Close()
	w := &countingWriter{wrote: make(chan struct{}, 1)}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- ServeSSE(sctx, w, sub, SSEOptions{Retry: 1500 * time.Millisecond, Heartbeat: time.Hour, EventTypes: typed})
	}()
	deadline := time.After(20 * time.Second)
	for {
		out, _, _ := w.snapshot()
		if strings.Count(out, "\nid:") == n {
			break
		}
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("not all events written: %d", strings.Count(out, "\nid:"))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeSSE: %v", err)
	}
	return w.snapshot()
}

func TestSSEHeartbeatAndEndOnClose(t *testing.T) {
	t.Parallel()
	hub := newHub(t)
	ctx := context.Background()
	st, err := hub.Open(ctx, "quiet", stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe(stream.FromNow())
	defer sub.Close()
	w := &countingWriter{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- ServeSSE(ctx, w, sub, SSEOptions{Heartbeat: 5 * time.Millisecond}) }()
	deadline := time.After(20 * time.Second)
	for {
		out, _, _ := w.snapshot()
		if strings.Count(out, ": hb\n\n") >= 2 {
			break
		}
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatal("no heartbeats")
		}
	}
	if err := hub.Remove(ctx, "quiet", false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("closed stream should end cleanly: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ServeSSE did not end when the stream closed")
	}
}

func TestParseClientFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{`{"resume":0}`, 0, true},
		{`{"resume":18446744073709551615}`, 18446744073709551615, true},
		{` {"resume": 42} `, 42, true},
		{`{"resume":-1}`, 0, false},
		{`{"resume":1.5}`, 0, false},
		{`{"resume":"3"}`, 0, false},
		{`{"resume":3,"x":1}`, 0, false},
		{`{}`, 0, false},
		{`{"resume":3}{}`, 0, false},
		{`[`, 0, false},
		{``, 0, false},
	}
	for _, tc := range tests {
		f, err := ParseClientFrame([]byte(tc.in))
		if tc.ok != (err == nil) {
			t.Fatalf("%q: err=%v, want ok=%v", tc.in, err, tc.ok)
		}
		if tc.ok && *f.Resume != tc.want {
			t.Fatalf("%q: resume %d, want %d", tc.in, *f.Resume, tc.want)
		}
	}
}

func FuzzParseClientFrame(f *testing.F) {
	for _, s := range []string{`{"resume":1}`, `{"resume":-1}`, `{}`, `null`, `{"resume":1e3}`, `{"resume":1}x`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseClientFrame(b)
		if err == nil && fr.Resume == nil {
			t.Fatalf("accepted %q without a resume", b)
		}
		if err == nil {
			// What is accepted round-trips.
			again, err := ParseClientFrame(fmt.Appendf(nil, `{"resume":%d}`, *fr.Resume))
			if err != nil || *again.Resume != *fr.Resume {
				t.Fatalf("round trip of %q failed", b)
			}
		}
	})
}

// framesWriter records what WriteFrames got; a plain Write fails the test.
type framesWriter struct {
	t      *testing.T
	frames [][]byte
}

func (w *framesWriter) Write(p []byte) (int, error) {
	w.t.Errorf("a copying Write of %d bytes to a FramesWriter", len(p))
	return len(p), nil
}
func (w *framesWriter) Flush() error { return nil }
func (w *framesWriter) WriteFrames(f [][]byte) (int, error) {
	n := 0
	for _, b := range f {
		w.frames = append(w.frames, b)
		n += len(b)
	}
	return n, nil
}

// A FramesWriter gets each event's cached frame itself, in order, in one
// call: a batch of a lagging subscriber is sent without a copy.
func TestSSEWritesCachedFramesWithoutCopy(t *testing.T) {
	t.Parallel()
	evs := make([]*event.Event, 3)
	for i := range evs {
		evs[i] = &event.Event{Stream: "s", Seq: uint64(i + 1), Type: "log", Time: time.Now(), Data: json.RawMessage(`{"i":1}`)}
	}
	w := &framesWriter{t: t}
	n, err := writeEvents(w, evs, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.frames) != len(evs) {
		t.Fatalf("%d frames for %d events", len(w.frames), len(evs))
	}
	total := 0
	for i, f := range w.frames {
		cached := wire.SSEFrame(evs[i])
		if &f[0] != &cached[0] || !bytes.Equal(f, cached) {
			t.Fatalf("frame %d is not event %d's cached frame", i, i+1)
		}
		total += len(f)
	}
	if n != total {
		t.Fatalf("reported %d bytes, wrote %d", n, total)
	}
}
