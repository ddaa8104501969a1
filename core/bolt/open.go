package bolt

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this build writes and the newest it reads.
const SchemaVersion = 1

// magic identifies a sidestream file in the meta bucket.
const magic = "sidestream-store"

var (
	bktMeta        = []byte("meta")
	bktEmitters    = []byte("emitters")
	bktCheckpoints = []byte("checkpoints")
	bktHeads       = []byte("heads")
	bktHistory     = []byte("history")

	keyMagic  = []byte("magic")
	keySchema = []byte("schema")
)

var allBuckets = [][]byte{bktMeta, bktEmitters, bktCheckpoints, bktHeads, bktHistory}

// Open opens (or creates) the store at path and starts its committer.
// An existing file is first inspected read-only, so a foreign or corrupt
// file is reported (ErrForeignFile, ErrCorrupt) and never written to.
// Another process holding the file yields ErrLocked after
// Options.LockTimeout.
func Open(ctx context.Context, path string, opts Options, log *slog.Logger) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create directory of %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Size() > 0:
		if err := probe(path, opts); err != nil {
			return nil, err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("bolt: stat %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.LockTimeout,
		NoSync:       opts.NoSync,
		FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, classifyOpenErr(path, err)
	}
	if err := initFile(db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Store{
		db:   db,
		path: path,
		log:  log,
		opts: opts,
		reqs: make(chan *request),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	if s.jr, err = recoverJournal(db, path+JournalSuffix, opts.NoSync, log); err != nil {
		_ = db.Close()
		return nil, err
	}
	depth := cmp.Or(opts.syncDepth, syncDepth)
	if opts.NoSync {
		depth = 0 // nothing to wait for: groups are acknowledged once written
	}
	if s.pipe, err = newSyncPipe(s.jr.path, depth, opts.syncSeam); err != nil {
		_ = s.jr.close()
		_ = db.Close()
		return nil, err
	}
	s.ap = newApplier(s)
	go s.run()
	log.Info("store opened", "path", path, "schema", SchemaVersion, "nosync", opts.NoSync)
	return s, nil
}

// probe opens an existing file read-only and checks it is ours.
func probe(path string, opts Options) (err error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: opts.LockTimeout})
	if err != nil {
		return classifyOpenErr(path, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bolt: close probe of %s: %w", path, cerr)
		}
	}()
	// A damaged page can make bbolt panic while walking it; that is a
	// corrupt file, not a crash of the sidecar.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	return db.View(func(tx *bbolt.Tx) error { return checkMeta(tx, path) })
}

// checkMeta accepts an empty bbolt file or one with our magic and a
// schema this build understands.
func checkMeta(tx *bbolt.Tx, path string) error {
	meta := tx.Bucket(bktMeta)
	if meta == nil {
		var other []byte
		_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			other = name
			return errStop
		})
		if other != nil {
			return fmt.Errorf("%w: %s has bucket %q and no sidestream meta", ErrForeignFile, path, other)
		}
		return nil
	}
	if string(meta.Get(keyMagic)) != magic {
		return fmt.Errorf("%w: %s has a meta bucket without the sidestream magic", ErrForeignFile, path)
	}
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return fmt.Errorf("%w: %s: schema version missing", ErrCorrupt, path)
	}
	if n := binary.BigEndian.Uint64(v); n > SchemaVersion {
		return fmt.Errorf("%w: %s has schema %d, this build reads up to %d", ErrSchemaTooNew, path, n, SchemaVersion)
	}
	return nil
}

var errStop = errors.New("stop")

// initFile creates the buckets and meta of a new file. It re-checks the
// meta inside the write transaction, so a file swapped in after the probe
// is still refused (and the rollback leaves it unchanged).
func initFile(db *bbolt.DB, path string) error {
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := checkMeta(tx, path); err != nil {
			return err
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bolt: create bucket %s in %s: %w", name, path, err)
			}
		}
		meta := tx.Bucket(bktMeta)
		if meta.Get(keyStoreID) == nil {
			// Ties a journal to this file (see recoverJournal); files
			// from before the journal get theirs on their next open.
			var id [16]byte
			if _, err := rand.Read(id[:]); err != nil {
				return fmt.Errorf("bolt: store id: %w", err)
			}
			if err := meta.Put(keyStoreID, id[:]); err != nil {
				return err
			}
		}
		if meta.Get(keyMagic) != nil {
			return nil
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], SchemaVersion)
		if err := meta.Put(keyMagic, []byte(magic)); err != nil {
			return err
		}
		return meta.Put(keySchema, v[:])
	})
	if err != nil && !errors.Is(err, ErrForeignFile) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSchemaTooNew) {
		return fmt.Errorf("bolt: initialize %s: %w", path, err)
	}
	return err
}

// classifyOpenErr maps bbolt's open errors onto the store's sentinels.
func classifyOpenErr(path string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s", ErrLocked, path)
	case errors.As(err, &pe):
		return fmt.Errorf("bolt: open %s: %w", path, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	default:
		// Anything else bbolt reports while reading an existing file
		// (mmap of a truncated file, bad page size) is damage too.
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
}
