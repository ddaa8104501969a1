package bolt

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
)

// FuzzApplyRecord: a damaged journal record is ErrCorrupt, never a panic
// or a partly applied record, and an intact one applies as written.
func FuzzApplyRecord(f *testing.F) {
	rec := appendRecord(nil, &stream.Append{Stream: "s", Head: 3, Events: events("s", 1, 2),
		Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("cp")}})
	f.Add(append([]byte{1}, rec...))
	f.Add([]byte{2, 1, 's', 0, 0, 0})
	f.Add([]byte{})
	// Tagged queue entries: a post of two messages and a delete of one,
	// in one record and alone, and an unknown kind.
	name := queueName(queue.Key{Tenant: "t", Queue: "q"})
	post := appendTaggedHeader(nil, entryQueuePost, name, 2)
	for seq := uint64(1); seq <= 2; seq++ {
		var v []byte
		post, v = appendPostedMessage(post, seq, msgHdrLen+1)
		(&msgRec{created: 1, expires: 2, body: []byte("1")}).encode(v)
	}
	del := binary.AppendUvarint(appendTaggedHeader(nil, entryQueueDelete, name, 1), 2)
	f.Add(append(append(append([]byte{3}, rec...), post...), del...))
	f.Add(append([]byte{1}, post...))
	f.Add(append([]byte{1}, del...))
	f.Add([]byte{1, 0, 9, 1, 'q', 0})
	db, err := bbolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	if err := initFile(db, "fuzz.db"); err != nil {
		f.Fatal(err)
	}
	errRollback := errors.New("rollback")
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ar arena
		err := db.Update(func(tx *bbolt.Tx) error {
			if err := applyRecord(tx, rec, &ar); err != nil {
				return err
			}
			return errRollback // keep the file as it was for the next input
		})
		if err != errRollback && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("applyRecord(%x) = %v, want ErrCorrupt or success", rec, err)
		}
	})
}

// FuzzJournalScan: whatever the bytes after the header, a scan stops at
// the first frame that is not intact and never reads past the file.
func FuzzJournalScan(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 1, 2, 3, 4, 'a', 'b', 'c', 'd'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, tail []byte) {
		path := filepath.Join(t.TempDir(), "j")
		j, err := openJournal(path, [16]byte{7}, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		defer j.close()
		if _, err := j.f.WriteAt(tail, journalHdrLen); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		j.size = fi.Size()
		end, err := j.scan(journalHdrLen, func(rec []byte, end int64) error {
			if end > j.size || len(rec) == 0 {
				t.Fatalf("record of %d bytes ending at %d, file %d", len(rec), end, j.size)
			}
			return nil
		})
		if err != nil || end < journalHdrLen || end > j.size {
			t.Fatalf("scan end %d (file %d): %v", end, j.size, err)
		}
	})
}
