package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
)

// The journal is the write-ahead log in front of the B-tree. A group of
// writes (stream appends, queue posts and deletes) is acknowledged once its record is in the journal (one write,
// one fdatasync); the applier moves records into the B-tree later, in
// larger transactions, off the writers' path. bbolt rewrites every page
// an append touches (history leaf, branch, head, checkpoint: ~2.6 pages
// per stream per commit), so with many streams a sequential append is
// what keeps a commit short.
//
// File layout:
//
//	[0:8]   magic "SSJRNL01"
//	[8:16]  generation, big-endian
//	[16:32] id of the store the journal belongs to (meta bucket)
//	frames: [u32 payload length][u32 CRC-32C of generation + payload][payload = record]
//
// The committer writes frames one at a time, in order, and may keep up
// to syncDepth fdatasyncs of them in flight on sync workers, each on its
// own descriptor (syncpipe.go); a group is acknowledged once its own
// sync and every earlier group's have succeeded.
//
// The file is grown ahead of the writes in zero-filled steps and reused
// across generations, so an append overwrites allocated blocks and its
// fdatasync flushes data only, with no file-size change to journal
// (half the time of an appending write on the disks measured). The
// generation in each frame's checksum makes the frames an older
// generation left behind read as the end of the journal.
//
// The B-tree's meta bucket stores the journal position (generation,
// offset) its content includes, in the same transaction as the applied
// records. A journal is only truncated when everything in it is applied,
// and the truncation starts a new generation, so the stored position
// always says where replay starts.
const (
	journalMagic  = "SSJRNL01"
	journalHdrLen = 32
	frameHdrLen   = 8
	// maxFrame bounds one record: the committer's group is bounded by
	// MaxBatchBytes far below this, so a larger length is damage.
	maxFrame = 1 << 30
	// growStep is how far ahead of the writes the file is zero-filled.
	growStep = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journalPos is a place in the journal: generation and byte offset.
type journalPos struct{ gen, off uint64 }

func (p journalPos) encode() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[:8], p.gen)
	binary.BigEndian.PutUint64(b[8:], p.off)
	return b
}

func decodePos(b []byte) (journalPos, bool) {
	if len(b) != 16 {
		return journalPos{}, false
	}
	return journalPos{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, true
}

// errJournalOfAnotherStore means the journal's header names another
// store: its records cannot be applied to this one.
var errJournalOfAnotherStore = errors.New("journal belongs to another store")

type journal struct {
	f      *os.File
	id     [16]byte
	path   string
	gen    uint64
	size   int64 // where the next frame goes
	alloc  int64 // the file's length, zero-filled past size
	noSync bool
	fresh  bool // made by this open: its directory entry needs a sync
	// err: a failed fdatasync. The kernel may have dropped the pages
	// and a later sync can report success anyway, so no more writes
	// are taken until the store is reopened and replays what is there.
	err error
}

// openJournal opens the journal at path, creating it (with generation
// minGen) when missing or left empty by a crash during a reset. A file
// that is not a journal is ErrCorrupt and is not touched.
func openJournal(path string, id [16]byte, minGen uint64, noSync bool) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bolt: open journal %s: %w", path, err)
	}
	j := &journal{f: f, id: id, path: path, noSync: noSync}
	var hdr [journalHdrLen]byte
	n, err := io.ReadFull(f, hdr[:])
	switch {
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("bolt: read journal %s: %w", path, err)
	case n < journalHdrLen && string(hdr[:min(n, 8)]) == journalMagic[:min(n, 8)]:
		// New, or cut by a reset that crashed before its header was
		// complete: a reset only happens when nothing is unapplied.
		j.fresh = n == 0
		err = j.reset(minGen)
	case n < journalHdrLen || string(hdr[:8]) != journalMagic:
		err = fmt.Errorf("%w: %s is not a sidestream journal", ErrCorrupt, path)
	case [16]byte(hdr[16:32]) != id:
		err = fmt.Errorf("%s: %w", path, errJournalOfAnotherStore)
	default:
		j.gen = binary.BigEndian.Uint64(hdr[8:16])
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil {
			j.size, j.alloc = fi.Size(), fi.Size()
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return j, nil
}

// scan calls fn with every intact record from offset from, in order, and
// the offset just past it. It stops at the first frame that is short or
// fails its checksum, which is the tail of a write that was never
// acknowledged, and returns the offset where intact data ends.
func (j *journal) scan(from int64, fn func(rec []byte, end int64) error) (int64, error) {
	r := io.NewSectionReader(j.f, from, j.size-from)
	off := from
	var hdr [frameHdrLen]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, nil
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n == 0 || n > maxFrame || int64(n) > j.size-off-frameHdrLen {
			return off, nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		rec := buf[:n]
		if _, err := io.ReadFull(r, rec); err != nil {
			return off, nil
		}
		if j.checksum(rec) != binary.BigEndian.Uint32(hdr[4:]) {
			return off, nil
		}
		off += frameHdrLen + int64(n)
		if err := fn(rec, off); err != nil {
			return off, err
		}
	}
}

// append writes frame (whose first frameHdrLen bytes are reserved for the
// frame header) at the end of the journal and syncs it on the journal's
// own descriptor: the one-at-a-time form, for stores without sync
// workers (NoSync) and for replay's tools. The committer's pipeline uses
// write and syncs on a worker's descriptor instead (syncpipe.go).
func (j *journal) append(frame []byte) (journalPos, error) {
	start, pos, err := j.write(frame)
	if err != nil {
		return journalPos{}, err
	}
	if err := j.sync(); err != nil {
		return journalPos{}, j.syncFailed(start, err)
	}
	return pos, nil
}

// write puts frame (whose first frameHdrLen bytes are reserved for the
// frame header) at the end of the journal without syncing it, and
// returns where the frame starts and the position just past it. On
// failure the journal is cut back to where it was, so a half-written
// frame never sits in front of the next one.
func (j *journal) write(frame []byte) (int64, journalPos, error) {
	if j.err != nil {
		return 0, journalPos{}, j.err
	}
	payload := frame[frameHdrLen:]
	if len(payload) > maxFrame {
		// Replay would take such a length for damage and stop there.
		return 0, journalPos{}, fmt.Errorf("%w: a commit of %d bytes exceeds the journal's %d", ErrInvalid, len(payload), maxFrame)
	}
	binary.BigEndian.PutUint32(frame[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(frame[4:8], j.checksum(payload))
	// The frame goes out with a zero header behind it, in the same write:
	// whatever an older generation left there, the journal then always
	// ends in a zero length, and replay tells that clean end from a
	// write cut short (see cleanEnd).
	n := len(frame)
	frame = append(frame, make([]byte, frameHdrLen)...)
	err := j.grow(j.size + int64(len(frame)))
	if err == nil {
		_, err = j.f.WriteAt(frame, j.size)
	}
	if err != nil {
		return 0, journalPos{}, j.cut(j.size, err)
	}
	start := j.size
	j.size += int64(n)
	return start, journalPos{j.gen, uint64(j.size)}, nil
}

// needsGrow reports whether a frame of n bytes (header included) would
// have to grow the file, which syncs it (see grow).
func (j *journal) needsGrow(n int) bool {
	return j.size+int64(n)+frameHdrLen > j.alloc
}

// syncFailed stops the journal after the fdatasync covering the frame
// at off failed: the kernel may have dropped the pages and a later sync
// can report success anyway, so no more writes are taken until the
// store is reopened and replays what is there. The frame's length is
// zeroed, so neither it nor any frame written behind it replays.
func (j *journal) syncFailed(off int64, err error) error {
	if j.err == nil {
		j.err = fmt.Errorf("bolt: journal %s: fdatasync failed; no more writes until the store is reopened: %w", j.path, err)
	}
	return j.cut(off, err)
}

// cut zeroes the length of the frame at off, which failed with err, and
// returns err as the write's error.
func (j *journal) cut(off int64, err error) error {
	var zero [frameHdrLen]byte
	if _, zerr := j.f.WriteAt(zero[:], off); zerr != nil {
		return fmt.Errorf("bolt: journal %s: write: %w (and clearing it: %w)", j.path, err, zerr)
	}
	return fmt.Errorf("bolt: journal %s: write: %w", j.path, err)
}

// cleanEnd reports whether the journal's intact records end cleanly at
// off: at the end of the file or at a zero frame length (the zero header
// every append and reset writes behind itself, or zero-filled space).
// Anything else there is a write cut short, or damage.
func (j *journal) cleanEnd(off int64) bool {
	var hdr [frameHdrLen]byte
	n, _ := j.f.ReadAt(hdr[:], off)
	return n == 0 || binary.BigEndian.Uint32(hdr[:4]) == 0
}

func (j *journal) checksum(payload []byte) uint32 {
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], j.gen)
	return crc32.Update(crc32.Checksum(g[:], crcTable), crcTable, payload)
}

// grow zero-fills the file up to at least end, a step ahead, and syncs
// the new length once for the many appends that will use it.
func (j *journal) grow(end int64) error {
	if end <= j.alloc {
		return nil
	}
	to := (end/growStep + 1) * growStep
	zeros := make([]byte, 64<<10)
	for off := j.alloc; off < to; off += int64(len(zeros)) {
		if _, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off); err != nil {
			return fmt.Errorf("grow: %w", err)
		}
	}
	if err := j.sync(); err != nil {
		return fmt.Errorf("grow: %w", err)
	}
	j.alloc = to
	return nil
}

// reset empties the journal and starts generation gen. Only call it when
// every record in the journal is applied. The file keeps its length:
// frames left from the older generation fail their checksum.
func (j *journal) reset(gen uint64) error {
	// The header and a zero frame length: frames of older generations
	// behind it are never read, not even as damage.
	var hdr [journalHdrLen + frameHdrLen]byte
	copy(hdr[:8], journalMagic)
	binary.BigEndian.PutUint64(hdr[8:16], gen)
	copy(hdr[16:], j.id[:])
	if _, err := j.f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("bolt: reset journal %s: %w", j.path, err)
	}
	if err := j.sync(); err != nil {
		return fmt.Errorf("bolt: reset journal %s: %w", j.path, err)
	}
	j.gen, j.size, j.alloc = gen, journalHdrLen, max(j.alloc, int64(len(hdr)))
	return nil
}

func (j *journal) sync() error {
	if j.noSync {
		return nil
	}
	return fdatasync(j.f)
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("bolt: close journal %s: %w", j.path, err)
	}
	return nil
}

// syncDir makes a new or renamed directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("bolt: sync directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bolt: sync directory %s: %w", dir, err)
	}
	return nil
}
