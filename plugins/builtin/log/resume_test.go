package logplugin

import (
	"context"
	"errors"
	"os"
	"testing"
)

// runUntilBatch runs from cp and stops the instance right after its
// stopAfter-th batch is stored, as a crash or a stop would, mid-file.
func runUntilBatch(t *testing.T, s fileSetup, cp []byte, stopAfter int) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	rec.onEmit = func(n int) {
		if n == stopAfter {
			cancel()
		}
	}
	r := startCtx(t, ctx, cancel, s.p, s.inst(cp), rec)
	must(t, r.wait(t))
	if got := len(rec.snapshot()); got != stopAfter {
		t.Fatalf("%d batches stored, want %d", got, stopAfter)
	}
	return rec
}

// resumeAndCollect starts a new Run from cp and returns its first n lines.
func resumeAndCollect(t *testing.T, s fileSetup, cp []byte, n int) []fileEvent {
	t.Helper()
	rec := newRecorder()
	r := start(t, s.p, s.inst(cp), rec)
	got := decodeFileEvents(t, rec.waitEvents(t, n))
	must(t, r.stop(t))
	return got
}

func TestResumeMidFileNoLossNoRepeat(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 3500))
	first := runUntilBatch(t, s, nil, 2)
	before := decodeFileEvents(t, first.events())
	appendLines(t, s.path, numbered(3501, 3600)) // written while stopped
	after := resumeAndCollect(t, s, first.lastCheckpoint(t), 3600-len(before))
	assertLines(t, append(before, after...), numbered(1, 3600))
}

func TestResumeAfterRotationWhileStopped(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 2500))
	first := runUntilBatch(t, s, nil, 1)
	before := decodeFileEvents(t, first.events())
	// While stopped: more lines in the old file, then rename+create.
	appendLines(t, s.path, numbered(2501, 2600))
	must(t, os.Rename(s.path, s.path+".1"))
	appendLines(t, s.path, numbered(2601, 2700))
	after := resumeAndCollect(t, s, first.lastCheckpoint(t), 2700-len(before))
	assertLines(t, append(before, after...), numbered(1, 2700))
}

func TestResumeAfterRotatedFileRemoved(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 20))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 20)
	must(t, r.stop(t))
	// The old file is rotated away and deleted while we are down: its
	// unread lines are gone; the new file is read from its start.
	appendLines(t, s.path, numbered(21, 25))
	must(t, os.Remove(s.path))
	appendLines(t, s.path, numbered(26, 30))
	after := resumeAndCollect(t, s, rec.lastCheckpoint(t), 5)
	assertLines(t, after, numbered(26, 30))
}

func TestResumeAfterTruncateWhileStopped(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 20))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 20)
	must(t, r.stop(t))
	must(t, os.Truncate(s.path, 0))
	appendLines(t, s.path, numbered(21, 23))
	assertLines(t, resumeAndCollect(t, s, rec.lastCheckpoint(t), 3), numbered(21, 23))
}

func TestResumeWithMissingFileWaits(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	appendLines(t, s.path, numbered(1, 5))
	rec := newRecorder()
	r := start(t, s.p, s.inst(nil), rec)
	rec.waitEvents(t, 5)
	must(t, r.stop(t))
	must(t, os.Rename(s.path, s.path+".1")) // rotated, new file not there yet
	rec2 := newRecorder()
	r2 := start(t, s.p, s.inst(rec.lastCheckpoint(t)), rec2)
	appendLines(t, s.path, numbered(6, 8))
	got := decodeFileEvents(t, rec2.waitEvents(t, 3))
	must(t, r2.stop(t))
	assertLines(t, got, numbered(6, 8))
}

func TestRunRejectsBadCheckpoint(t *testing.T) {
	t.Parallel()
	s := newFileSetup(t)
	for _, cp := range []string{`{"line":3}`, `{"dev":1,"ino":2}`, `{"dev":1,"ino":2,"offset":-5}`, `[]`, `{`} {
		err := s.p.Run(context.Background(), s.inst([]byte(cp)), newRecorder())
		if !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("checkpoint %s: Run = %v, want ErrBadCheckpoint", cp, err)
		}
	}
}
