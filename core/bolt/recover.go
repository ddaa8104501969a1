package bolt

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// JournalSuffix names the journal: the store's path plus this suffix.
const JournalSuffix = ".journal"

var keyStoreID = []byte("store-id")

// recoverJournal opens the journal, writes every record the B-tree does
// not have yet into it, and starts a new, empty generation. A damaged
// tail (a write cut by a crash, so never acknowledged) is dropped.
func recoverJournal(db *bbolt.DB, path string, noSync bool, log *slog.Logger) (*journal, error) {
	id, applied, err := journalMeta(db)
	if err != nil {
		return nil, err
	}
	j, err := openJournal(path, id, applied.gen+1, noSync)
	if errors.Is(err, errJournalOfAnotherStore) {
		// Left by a store file that was deleted or replaced: its
		// records belong to that file. Keep them aside, start afresh.
		aside := fmt.Sprintf("%s.other-%d", path, time.Now().UnixNano())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("bolt: %w (and moving it aside: %w)", err, rerr)
		}
		log.Warn("the journal belongs to another store file; moved aside", "path", path, "moved_to", aside)
		j, err = openJournal(path, id, applied.gen+1, noSync)
	}
	if err == nil && j.fresh && !noSync {
		// A new file (or one moved aside): its name must survive a
		// power loss as well as its contents.
		if err = syncDir(filepath.Dir(path)); err != nil {
			_ = j.close()
		}
	}
	if err != nil {
		return nil, err
	}
	if err := replay(db, j, applied, log); err != nil {
		_ = j.close()
		return nil, err
	}
	return j, nil
}

// journalMeta reads the store's id, which ties a journal to this file
// (initFile made it), and the journal position the file includes.
func journalMeta(db *bbolt.DB) (id [16]byte, applied journalPos, err error) {
	err = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		v := meta.Get(keyStoreID)
		if len(v) != len(id) {
			return fmt.Errorf("%w: store id %x", ErrCorrupt, v)
		}
		id = [16]byte(v)
		v = meta.Get(keyJournal)
		var ok bool
		if applied, ok = decodePos(v); !ok && v != nil {
			return fmt.Errorf("%w: journal position %x", ErrCorrupt, v)
		}
		return nil
	})
	return id, applied, err
}

// replayChunk bounds the records written per transaction during replay.
const replayChunk = 8 << 20

func replay(db *bbolt.DB, j *journal, applied journalPos, log *slog.Logger) error {
	from := int64(journalHdrLen)
	switch {
	case j.gen < applied.gen:
		return fmt.Errorf("%w: journal %s is generation %d, older than the store's %d", ErrCorrupt, j.path, j.gen, applied.gen)
	case j.gen == applied.gen:
		from = max(from, int64(applied.off))
	}
	var chunk []pending
	var slab []byte
	var ar arena
	records := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := db.Update(func(tx *bbolt.Tx) error {
			t := newTxApply(tx, &ar)
			for _, p := range chunk {
				if err := t.record(*p.rec); err != nil {
					return err
				}
			}
			if err := t.finish(); err != nil {
				return err
			}
			return tx.Bucket(bktMeta).Put(keyJournal, chunk[len(chunk)-1].pos.encode())
		})
		records += len(chunk)
		chunk, slab = chunk[:0], nil
		ar.reset()
		if err != nil {
			return fmt.Errorf("%w: replaying journal %s: %w", ErrApply, j.path, err)
		}
		return nil
	}
	end, err := j.scan(min(from, j.size), func(rec []byte, end int64) error {
		start := len(slab)
		slab = append(slab, rec...)
		r := slab[start:len(slab):len(slab)]
		chunk = append(chunk, pending{rec: &r, pos: journalPos{j.gen, uint64(end)}})
		if len(slab) >= replayChunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	if !j.cleanEnd(end) {
		log.Warn("journal ends in a damaged record; dropping it (a write cut short, never acknowledged)",
			"path", j.path, "offset", end, "bytes", j.size-end)
	}
	if records > 0 {
		log.Info("journal replayed", "path", j.path, "records", records)
	}
	if j.size > journalHdrLen || j.gen <= applied.gen {
		return j.reset(max(j.gen, applied.gen) + 1)
	}
	return nil
}
