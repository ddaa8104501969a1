package logplugin

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sidestream/sidestream/plugins/sdk"
)

func TestTailFollowsAppendsWithOffsets(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, []string{"alpha", "", "gamma \"quoted\" \t tab"})
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 3)
	appendLines(t, s.path, []string{"delta", "épsilon"})
	got := decodeFileEvents(t, rec.waitEvents(t, 5))
	must(t, r.stop(t))

	assertLines(t, got, []string{"alpha", "", "gamma \"quoted\" \t tab", "delta", "épsilon"})
	content, err := os.ReadFile(s.path)
	must(t, err)
	for _, e := range got {
		if e.Path != s.path {
			t.Fatalf("path %q, want %q", e.Path, s.path)
		}
		end := e.Offset + int64(len(e.Line))
		if end > int64(len(content)) || string(content[e.Offset:end]) != e.Line || content[end] != '\n' {
			t.Fatalf("offset %d does not point at line %q", e.Offset, e.Line)
		}
	}
	// Every batch carries the checkpoint that holds after its last line.
	for _, b := range rec.snapshot() {
		cp, ok, err := decodeFileCheckpoint(b.Checkpoint)
		if err != nil || !ok {
			t.Fatalf("batch checkpoint %s: ok=%v err=%v", b.Checkpoint, ok, err)
		}
		last := decodeFileEvents(t, b.Events[len(b.Events)-1:])[0]
		if want := last.Offset + int64(len(last.Line)) + 1; cp.Offset != want {
			t.Fatalf("checkpoint offset %d, want %d (after %q)", cp.Offset, want, last.Line)
		}
	}
}

func TestTailPartialLineWaitsForNewline(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	// One write: when "first" is out, "par" has been read as well.
	must(t, os.WriteFile(s.path, []byte("first\npar"), 0o644))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 1)
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString("tial\r\nlast\n")
	must(t, errors.Join(err, f.Close()))
	got := decodeFileEvents(t, rec.waitEvents(t, 3))
	must(t, r.stop(t))
	assertLines(t, got, []string{"first", "partial", "last"})
	if got[1].Offset != 6 {
		t.Fatalf("offset of the joined line = %d, want 6", got[1].Offset)
	}
}

func TestConsumeSplitsLongLinesOnRuneBoundary(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	tl := &tailer{out: rec, pathJSON: []byte(`"/x"`), log: discardLogger()}
	// MaxLineBytes-1 ASCII bytes then a 2-byte rune: the cut must not
	// split the rune, so the first piece is one byte short.
	long := strings.Repeat("a", MaxLineBytes-1) + "é" + "tail"
	must(t, tl.consume(context.Background(), []byte(long+"\nnext"), time.Now()))
	must(t, tl.flush(context.Background()))
	got := decodeFileEvents(t, rec.events())
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2 pieces", len(got))
	}
	if got[0].Line != strings.Repeat("a", MaxLineBytes-1) || got[1].Line != "étail" {
		t.Fatalf("pieces of %d and %q", len(got[0].Line), got[1].Line)
	}
	if got[1].Offset != MaxLineBytes-1 || !utf8.ValidString(got[1].Line) {
		t.Fatalf("second piece offset %d", got[1].Offset)
	}
	if string(tl.pending) != "next" || tl.off != int64(len(long)+1) {
		t.Fatalf("pending %q off %d", tl.pending, tl.off)
	}
}

func TestTailBatchesAreBounded(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 2500))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	got := decodeFileEvents(t, rec.waitEvents(t, 2500))
	must(t, r.stop(t))
	assertLines(t, got, numbered(1, 2500))
	for _, b := range rec.snapshot() {
		if len(b.Events) == 0 || len(b.Events) > maxBatchLines || b.Checkpoint == nil {
			t.Fatalf("batch of %d events, checkpoint %s", len(b.Events), b.Checkpoint)
		}
	}
}

func TestTailRenameCreateRotation(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 50))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 50)

	// The writer keeps its descriptor across the rename (as a daemon does
	// until it is told to reopen), then the new file is created.
	w, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = io.WriteString(w, strings.Join(numbered(51, 60), "\n")+"\n")
	must(t, err)
	must(t, os.Rename(s.path, s.path+".1"))
	_, err = io.WriteString(w, strings.Join(numbered(61, 70), "\n")+"\n")
	must(t, errors.Join(err, w.Close()))
	appendLines(t, s.path, numbered(71, 100))

	rec.waitEvents(t, 100)
	appendLines(t, s.path, numbered(101, 110))
	got := decodeFileEvents(t, rec.waitEvents(t, 110))
	must(t, r.stop(t))
	assertLines(t, got, numbered(1, 110))
	if got[70].Offset != 0 {
		t.Fatalf("first line of the new file has offset %d, want 0", got[70].Offset)
	}
}

func TestTailCopyTruncate(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 40))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 40)

	content, err := os.ReadFile(s.path)
	must(t, err)
	must(t, os.WriteFile(s.path+".1", content, 0o644))
	must(t, os.Truncate(s.path, 0))
	appendLines(t, s.path, numbered(41, 45))

	got := decodeFileEvents(t, rec.waitEvents(t, 45))
	must(t, r.stop(t))
	assertLines(t, got, numbered(1, 45))
	if got[40].Offset != 0 {
		t.Fatalf("first line after truncation has offset %d, want 0", got[40].Offset)
	}
}

func TestTailMissingFileAppearsLater(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	must(t, os.RemoveAll(strings.TrimSuffix(s.path, "/console.log")))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	must(t, os.MkdirAll(strings.TrimSuffix(s.path, "/console.log"), 0o755))
	appendLines(t, s.path, numbered(1, 3))
	got := decodeFileEvents(t, rec.waitEvents(t, 3))
	must(t, r.stop(t))
	assertLines(t, got, numbered(1, 3))
}

func TestRunRefusesSymlinkSwappedOutside(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 2))
	// Validated while it was a regular file...
	if _, err := s.p.Validate(context.Background(), s.config); err != nil {
		t.Fatal(err)
	}
	// ...then swapped for a symlink to a file outside the roots.
	secret := t.TempDir() + "/secret"
	must(t, os.WriteFile(secret, []byte("top secret\n"), 0o644))
	must(t, os.Remove(s.path))
	must(t, os.Symlink(secret, s.path))

	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	err := r.wait(t)
	if !errors.Is(err, ErrSymlinkEscape) {
		t.Fatalf("Run = %v, want ErrSymlinkEscape", err)
	}
	if n := len(rec.events()); n != 0 {
		t.Fatalf("emitted %d events from outside the roots", n)
	}
}

func TestRunRefusesSymlinkRotatedInOutside(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 2))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 2)
	secret := t.TempDir() + "/secret"
	must(t, os.WriteFile(secret, []byte("top secret\n"), 0o644))
	must(t, os.Rename(s.path, s.path+".1"))
	must(t, os.Symlink(secret, s.path))
	if err := r.wait(t); !errors.Is(err, ErrSymlinkEscape) {
		t.Fatalf("Run = %v, want ErrSymlinkEscape", err)
	}
	for _, e := range decodeFileEvents(t, rec.events()) {
		if strings.Contains(e.Line, "secret") {
			t.Fatalf("read %q from outside the roots", e.Line)
		}
	}
}

func TestRunFileWithoutRootsFails(t *testing.T) {
	t.Parallel()
	p := NewWithRoots(nil)
	err := p.Run(context.Background(), sdk.Instance{ID: "x", Config: fileConfig("/var/log/x.log")}, newRecorder())
	if !errors.Is(err, ErrNoRoots) {
		t.Fatalf("Run = %v, want a no-roots error", err)
	}
}
