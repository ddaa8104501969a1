package logplugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrBadCheckpoint means a stored checkpoint cannot be read. Run fails
// rather than guess, because guessing would lose or repeat lines.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// fileID is a file's identity: it survives renames, so a rotated file can
// be found again.
type fileID struct {
	Dev uint64
	Ino uint64
}

// fileCheckpoint is the position of a file source: the file and the
// offset of its next unread byte (always a line start).
type fileCheckpoint struct {
	ID     fileID
	Offset int64
}

func (c fileCheckpoint) encode() []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"dev":`...)
	b = strconv.AppendUint(b, c.ID.Dev, 10)
	b = append(b, `,"ino":`...)
	b = strconv.AppendUint(b, c.ID.Ino, 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, c.Offset, 10)
	return append(b, '}')
}

// decodeFileCheckpoint reads a checkpoint; ok is false for none (nil,
// empty, null).
func decodeFileCheckpoint(b []byte) (c fileCheckpoint, ok bool, err error) {
	var raw struct {
		Dev    *uint64 `json:"dev"`
		Ino    *uint64 `json:"ino"`
		Offset *int64  `json:"offset"`
	}
	if ok, err := decodeStrict(b, &raw); !ok || err != nil {
		return c, false, err
	}
	if raw.Dev == nil || raw.Ino == nil || raw.Offset == nil {
		return c, false, fmt.Errorf("%w: file checkpoint needs dev, ino and offset", ErrBadCheckpoint)
	}
	if *raw.Offset < 0 {
		return c, false, fmt.Errorf("%w: negative offset %d", ErrBadCheckpoint, *raw.Offset)
	}
	return fileCheckpoint{ID: fileID{Dev: *raw.Dev, Ino: *raw.Ino}, Offset: *raw.Offset}, true, nil
}

// lineCheckpoint is the synthetic generator's position: the last line
// number emitted.
type lineCheckpoint struct {
	Line uint64
}

func (c lineCheckpoint) encode() []byte {
	b := append(make([]byte, 0, 32), `{"line":`...)
	b = strconv.AppendUint(b, c.Line, 10)
	return append(b, '}')
}

func decodeLineCheckpoint(b []byte) (c lineCheckpoint, ok bool, err error) {
	var raw struct {
		Line *uint64 `json:"line"`
	}
	if ok, err := decodeStrict(b, &raw); !ok || err != nil {
		return c, false, err
	}
	if raw.Line == nil {
		return c, false, fmt.Errorf("%w: synthetic checkpoint needs line", ErrBadCheckpoint)
	}
	return lineCheckpoint{Line: *raw.Line}, true, nil
}

// decodeStrict decodes one JSON object with no unknown fields and no
// trailing data; ok is false for an absent checkpoint.
func decodeStrict(b []byte, v any) (ok bool, err error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return false, nil
	}
	if t[0] != '{' {
		return false, fmt.Errorf("%w: not a JSON object", ErrBadCheckpoint)
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	if dec.More() {
		return false, fmt.Errorf("%w: trailing data", ErrBadCheckpoint)
	}
	return true, nil
}
