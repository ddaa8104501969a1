package logplugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sidestream/sidestream/plugins/sdk"
)

const (
	// MaxLineBytes bounds one event's line. A longer line is split into
	// pieces of at most MaxLineBytes (cut on a UTF-8 boundary); each piece
	// is its own event whose offset is where the piece starts.
	MaxLineBytes = 1 << 20
	// maxBatchBytes bounds the encoded data of one batch (it may exceed it
	// by one event).
	maxBatchBytes = 2 << 20
	readChunk     = 64 << 10
	// maxChunksPerPass lets a fast-growing file still be checked for
	// rotation and flushed regularly.
	maxChunksPerPass = 256
	maxDirEntries    = 10000
)

// tailer follows one file path. off is the offset of the first byte of
// pending (the partial line not emitted yet) in the open file; it is also
// the checkpoint offset once the batch holding the lines before it is out.
type tailer struct {
	path     string
	pathJSON []byte
	roots    rootSet
	out      sdk.Output
	log      *slog.Logger
	poll     time.Duration

	f       *os.File
	id      fileID
	off     int64
	pending []byte
	buf     []byte
	events  []sdk.Event
	evBytes int
	waiting bool // "waiting for file" was logged
}

func (p *Plugin) runFile(ctx context.Context, c cfg, inst sdk.Instance, out sdk.Output) error {
	cp, ok, err := decodeFileCheckpoint(inst.Checkpoint)
	if err != nil {
		return err
	}
	path := filepath.Clean(c.Path)
	t := &tailer{
		path: path, pathJSON: appendJSONString(nil, []byte(path)),
		roots: p.roots, out: out, poll: p.poll, buf: make([]byte, readChunk),
		log: p.log.With("instance", inst.ID, "path", path),
	}
	defer t.closeFile()
	if ok {
		if err := t.resume(cp); err != nil {
			return err
		}
	}
	return t.loop(ctx)
}

func (t *tailer) loop(ctx context.Context) error {
	timer := time.NewTimer(t.poll)
	defer timer.Stop()
	for ctx.Err() == nil {
		progressed, err := t.readToEOF(ctx)
		if err == nil {
			err = t.flush(ctx)
		}
		switched := false
		if err == nil && !progressed {
			switched, err = t.checkFile(ctx)
		}
		if err != nil {
			return err
		}
		if progressed || switched {
			continue
		}
		timer.Reset(t.poll)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	return nil
}

// resume positions the tailer at a checkpoint: the same file at the path,
// or the checkpointed file found again by identity after a rotation while
// we were stopped (read to its end before the file now at the path).
func (t *tailer) resume(cp fileCheckpoint) error {
	f, id, err := t.roots.open(t.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if f != nil && id == cp.ID {
		t.setFile(f, id, cp.Offset)
		return nil
	}
	if old, ok := t.findByID(cp.ID); ok {
		if f != nil {
			_ = f.Close()
		}
		t.setFile(old, cp.ID, cp.Offset)
		return nil
	}
	t.log.Warn("checkpointed file is gone (rotated away and removed while stopped); lines after the checkpoint in it are lost, reading the current file from the start",
		"dev", cp.ID.Dev, "ino", cp.ID.Ino, "offset", cp.Offset)
	if f != nil {
		t.setFile(f, id, 0)
	}
	return nil
}

func (t *tailer) setFile(f *os.File, id fileID, off int64) {
	if fi, err := f.Stat(); err == nil && fi.Size() < off {
		t.log.Warn("file is shorter than the checkpoint (truncated while stopped); reading from the start",
			"size", fi.Size(), "offset", off)
		off = 0
	}
	t.f, t.id, t.off, t.pending = f, id, off, t.pending[:0]
}

// findByID looks for the file with identity id among the regular files
// of the path's (real) directory, where rotation leaves it.
func (t *tailer) findByID(id fileID) (*os.File, bool) {
	if id == (fileID{}) {
		return nil, false
	}
	real, err := t.roots.check(t.path)
	if err != nil {
		return nil, false
	}
	dir, err := os.Open(filepath.Dir(real))
	if err != nil {
		return nil, false
	}
	entries, _ := dir.ReadDir(maxDirEntries)
	_ = dir.Close()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue // symlinks are never followed here
		}
		fi, err := e.Info()
		if err != nil || identityOf(fi) != id {
			continue
		}
		f, gotID, err := t.roots.openReal(filepath.Join(filepath.Dir(real), e.Name()))
		if err == nil && gotID == id {
			return f, true
		}
		if f != nil {
			_ = f.Close()
		}
	}
	return nil, false
}

// tryOpen opens the path if it exists; a missing file is waited for.
func (t *tailer) tryOpen() (bool, error) {
	f, id, err := t.roots.open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		if !t.waiting {
			t.log.Info("waiting for file to appear")
			t.waiting = true
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	t.waiting = false
	t.setFile(f, id, 0)
	return true, nil
}

func (t *tailer) closeFile() {
	if t.f != nil {
		_ = t.f.Close()
		t.f = nil
	}
}

// readToEOF reads what the open file has beyond what we consumed and
// turns complete lines into events, emitting full batches on the way.
func (t *tailer) readToEOF(ctx context.Context) (bool, error) {
	if t.f == nil {
		if ok, err := t.tryOpen(); !ok || err != nil {
			return false, err
		}
	}
	progressed := false
	for range maxChunksPerPass {
		if ctx.Err() != nil {
			return progressed, nil
		}
		n, err := t.f.ReadAt(t.buf, t.off+int64(len(t.pending)))
		if n > 0 {
			progressed = true
			if err := t.consume(ctx, t.buf[:n], time.Now()); err != nil {
				return progressed, err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return progressed, nil
		}
		if err != nil {
			return progressed, fmt.Errorf("read %s: %w", t.path, err)
		}
	}
	return progressed, nil
}

// consume appends data to the partial line and emits every complete line
// (or MaxLineBytes piece) it now holds.
func (t *tailer) consume(ctx context.Context, data []byte, now time.Time) error {
	t.pending = append(t.pending, data...)
	p, start := t.pending, 0
	var err error
	for err == nil {
		rest := p[start:]
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		adv := 0
		switch {
		case i >= 0 && i <= MaxLineBytes:
			line, adv = bytes.TrimSuffix(rest[:i], []byte{'\r'}), i+1
		case i > MaxLineBytes || (i < 0 && len(rest) > MaxLineBytes):
			adv = runeCut(rest, MaxLineBytes)
			line = rest[:adv]
		default:
			n := copy(p, rest)
			t.pending = p[:n]
			return nil
		}
		t.addLine(line, now)
		t.off += int64(adv)
		start += adv
		if len(t.events) >= maxBatchLines || t.evBytes >= maxBatchBytes {
			err = t.flush(ctx)
		}
	}
	t.pending = append(t.pending[:0], p[start:]...)
	return err
}

// runeCut returns a cut point <= n that does not split a UTF-8 sequence.
func runeCut(b []byte, n int) int {
	cut := n
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
		cut--
	}
	if cut == 0 {
		return n
	}
	return cut
}

// addLine queues the event for a line starting at t.off.
func (t *tailer) addLine(line []byte, now time.Time) {
	d := make([]byte, 0, len(line)+len(t.pathJSON)+48)
	d = append(d, `{"line":`...)
	d = appendJSONString(d, line)
	d = append(d, `,"path":`...)
	d = append(d, t.pathJSON...)
	d = append(d, `,"offset":`...)
	d = strconv.AppendInt(d, t.off, 10)
	d = append(d, '}')
	t.events = append(t.events, sdk.Event{Type: EventType, Data: d, Time: now})
	t.evBytes += len(d)
}

// flush emits the queued events with the checkpoint that holds after them.
func (t *tailer) flush(ctx context.Context) error {
	if len(t.events) == 0 {
		return nil
	}
	b := sdk.Batch{Events: t.events, Checkpoint: fileCheckpoint{ID: t.id, Offset: t.off}.encode()}
	t.events, t.evBytes = make([]sdk.Event, 0, len(t.events)), 0
	if err := t.out.Emit(ctx, b); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// checkFile runs when the open file had nothing new: it detects
// copytruncate (file shorter than what we read) and rename+create (another
// file at the path). It reports whether it switched position, so the
// caller reads again at once.
func (t *tailer) checkFile(ctx context.Context) (bool, error) {
	if t.f == nil {
		return false, nil
	}
	fi, err := t.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", t.path, err)
	}
	if fi.Size() < t.off+int64(len(t.pending)) {
		t.log.Info("file truncated (copytruncate); reading from the start", "size", fi.Size(), "offset", t.off)
		t.off, t.pending = 0, t.pending[:0]
		return true, nil
	}
	st, err := os.Stat(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // renamed, new file not created yet: keep the old one
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", t.path, err)
	}
	if identityOf(st) == t.id {
		return false, nil
	}
	// Rotated. The writer may still append to the old file until it
	// reopens: drain it, and switch only after a pass that found nothing.
	if progressed, err := t.readToEOF(ctx); progressed || err != nil {
		return progressed, err
	}
	if len(t.pending) > 0 {
		// The old file is finished: its unterminated last line is whole.
		t.addLine(t.pending, time.Now())
		t.off += int64(len(t.pending))
		t.pending = t.pending[:0]
	}
	if err := t.flush(ctx); err != nil {
		return false, err
	}
	t.log.Info("file rotated; following the new file")
	t.closeFile()
	_, err = t.tryOpen()
	return true, err
}
