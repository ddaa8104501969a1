package logplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/plugins/sdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hangGuard only stops a broken test from hanging; no test asserts timing.
const hangGuard = 20 * time.Second

// recorder is an sdk.Output that behaves like the host: a batch emitted
// after the instance is stopped is refused (not stored).
type recorder struct {
	mu      sync.Mutex
	batches []sdk.Batch
	signal  chan struct{}
	// onEmit, if set, runs after batch n (1-based) is stored.
	onEmit func(n int)
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) Emit(ctx context.Context, b sdk.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	r.batches = append(r.batches, b)
	n := len(r.batches)
	r.mu.Unlock()
	if r.onEmit != nil {
		r.onEmit(n)
	}
	select {
	case r.signal <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) snapshot() []sdk.Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sdk.Batch(nil), r.batches...)
}

func (r *recorder) events() []sdk.Event {
	var out []sdk.Event
	for _, b := range r.snapshot() {
		out = append(out, b.Events...)
	}
	return out
}

func (r *recorder) lastCheckpoint(t *testing.T) []byte {
	t.Helper()
	bs := r.snapshot()
	if len(bs) == 0 {
		t.Fatal("no batch recorded")
	}
	return bs[len(bs)-1].Checkpoint
}

// waitEvents waits until at least n events are recorded.
func (r *recorder) waitEvents(t *testing.T, n int) []sdk.Event {
	t.Helper()
	deadline := time.After(hangGuard)
	for i := 0; i < 100000; i++ {
		if ev := r.events(); len(ev) >= n {
			return ev
		}
		select {
		case <-r.signal:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("hang guard: %d events recorded, want %d", len(r.events()), n)
		}
	}
	t.Fatalf("gave up waiting for %d events", n)
	return nil
}

// running is a Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, p sdk.Plugin, inst sdk.Instance, out sdk.Output) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	return startCtx(t, ctx, cancel, p, inst, out)
}

func startCtx(t *testing.T, ctx context.Context, cancel context.CancelFunc, p sdk.Plugin, inst sdk.Instance, out sdk.Output) *running {
	t.Helper()
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx, inst, out) }()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// stop cancels the Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err, ok := <-r.done:
		if !ok {
			return nil
		}
		close(r.done)
		return err
	case <-time.After(hangGuard):
		t.Fatal("hang guard: Run did not return")
		return nil
	}
}

type fileEvent struct {
	Line   string `json:"line"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
}

func decodeFileEvents(t *testing.T, evs []sdk.Event) []fileEvent {
	t.Helper()
	out := make([]fileEvent, len(evs))
	for i, e := range evs {
		if e.Type != EventType {
			t.Fatalf("event %d type %q, want %q", i, e.Type, EventType)
		}
		if err := json.Unmarshal(e.Data, &out[i]); err != nil {
			t.Fatalf("event %d data %s: %v", i, e.Data, err)
		}
	}
	return out
}

func lineTexts(evs []fileEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Line
	}
	return out
}

// numbered returns "line-from" .. "line-to".
func numbered(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("line-%04d", i))
	}
	return out
}

func appendLines(t *testing.T, path string, lines []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(lines) == 0 {
		return
	}
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func assertLines(t *testing.T, got []fileEvent, want []string) {
	t.Helper()
	texts := lineTexts(got)
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("lines:\n got %d %v\nwant %d %v", len(texts), clip(texts), len(want), clip(want))
	}
}

func clip(s []string) []string {
	if len(s) > 12 {
		return append(append(append([]string(nil), s[:6]...), "…"), s[len(s)-6:]...)
	}
	return s
}

// fileSetup is a root dir with a log path inside and a plugin bound to it.
type fileSetup struct {
	root, path string
	p          sdk.Plugin
	config     json.RawMessage
}

func newFileSetup(t *testing.T) fileSetup {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "guests", "vm-17")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "console.log")
	cfg, _ := json.Marshal(map[string]string{"source": "file", "path": path})
	return fileSetup{
		root: root, path: path, config: cfg,
		p: NewWithOptions(Options{Roots: []string{root}, PollInterval: 5 * time.Millisecond}),
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (s fileSetup) inst(cp []byte) sdk.Instance {
	return sdk.Instance{ID: "vm-17-console", Config: s.config, Checkpoint: cp}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
