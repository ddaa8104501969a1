package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/stream"
)

// makeBolt writes a bbolt file at path shaped by fill.
func makeBolt(t *testing.T, path string, fill func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fill != nil {
		if err := db.Update(fill); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// openRefused asserts Open fails with want, names the path, and leaves
// the file byte for byte as it was.
func openRefused(t *testing.T, path string, want error) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(testCtx(t), path, Options{LockTimeout: 200 * time.Millisecond}, nil)
	if err == nil {
		_ = s.Close(testCtx(t))
		t.Fatalf("Open succeeded, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open = %v, want %v", err, want)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("Open changed the refused file (%d -> %d bytes)", len(before), len(after))
	}
}

func TestForeignFileRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fill func(tx *bbolt.Tx) error
	}{
		{"other bucket", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("users"))
			if err != nil {
				return err
			}
			return b.Put([]byte("alice"), []byte("admin"))
		}},
		{"meta without magic", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket(bktMeta)
			if err != nil {
				return err
			}
			return b.Put(keyMagic, []byte("someone-else"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tempPath(t)
			makeBolt(t, path, tc.fill)
			openRefused(t, path, ErrForeignFile)
		})
	}
}

func TestCorruptFileRefused(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"text", []byte("hello, I am not a database\n")},
		{"random", random},
		{"zeros", make([]byte, 32<<10)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tempPath(t)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			openRefused(t, path, ErrCorrupt)
		})
	}
}

// A store whose meta pages are damaged after use is refused, not rebuilt.
func TestDamagedStoreRefused(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 5)})
	closeT(t, s)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	junk := bytes.Repeat([]byte{0xAB}, 64)
	for _, off := range []int64{16, int64(page) + 16} { // both meta pages
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	openRefused(t, path, ErrCorrupt)
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	closeT(t, openT(t, path, Options{}))
	makeBolt(t, path, func(tx *bbolt.Tx) error {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], SchemaVersion+1)
		return tx.Bucket(bktMeta).Put(keySchema, v[:])
	})
	openRefused(t, path, ErrSchemaTooNew)
}

func TestLockedFile(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	openRefused(t, path, ErrLocked)
	closeT(t, s)
	s2 := openT(t, path, Options{LockTimeout: 5 * time.Second})
	closeT(t, s2)
}

func TestAdoptsEmptyFiles(t *testing.T) {
	t.Parallel()
	mkdir := func(t *testing.T, path string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name      string
		make      func(t *testing.T, path string)
		createDir bool // Open must create the parent directory
	}{
		{"missing, parent missing too", func(*testing.T, string) {}, true},
		{"zero length", func(t *testing.T, path string) {
			mkdir(t, path)
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"bbolt without buckets", func(t *testing.T, path string) { mkdir(t, path); makeBolt(t, path, nil) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "a", "b", "store.db")
			tc.make(t, path)
			s := openT(t, path, Options{})
			commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 1)})
			closeT(t, s)
			s = openT(t, path, Options{})
			if h, _ := s.Head(testCtx(t), "s"); h != 1 {
				t.Fatalf("head after reopen = %d", h)
			}
			fi, err := os.Stat(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if tc.createDir && fi.Mode().Perm() != 0o700 {
				t.Fatalf("created directory mode %v, want 0700", fi.Mode().Perm())
			}
		})
	}
}
