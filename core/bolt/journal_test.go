package bolt

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
)

const crashChildEnv = "SIDESTREAM_BOLT_CRASH_CHILD"

// holdInJournal keeps journaled records out of the B-tree until a read
// or Close asks for them, as if the applier were always behind.
var holdInJournal = Options{applyLinger: time.Hour}

// Not a test: the child process of TestJournalSurvivesKill. It commits
// appends from several writers and prints each acknowledged one until it
// is killed.
func TestJournalCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		return
	}
	s, err := Open(context.Background(), path, holdInJournal, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			name := fmt.Sprint("w", w)
			for seq := uint64(1); seq <= 100000; seq++ {
				cp := &stream.Checkpoint{Emitter: name, Value: []byte(strconv.FormatUint(seq, 10))}
				if err := s.Commit(context.Background(), stream.Append{Stream: name, Events: events(name, seq, 1), Checkpoint: cp}); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d\n", name, seq)
				_ = out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// Every append acknowledged before a kill -9 is there after the restart,
// with its checkpoint, although the B-tree alone does not have it: the
// journal is replayed. A torn frame at the journal's end (a write cut by
// the crash) is dropped, and the store works on.
func TestJournalSurvivesKill(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	acked := killCrashChild(t, path, 2000)

	if inTree := headsInTree(t, path); inTree >= len(acked) {
		t.Logf("every writer's last append reached the B-tree before the kill; the journal replay is not exercised")
	}
	tearJournalTail(t, path+JournalSuffix)

	s := openT(t, path, Options{})
	checkAcked(ctx, t, s, acked)
	commitT(t, s, stream.Append{Stream: "after", Events: events("after", 1, 1)})
	closeT(t, s)
	s = openT(t, path, Options{})
	if h, _ := s.Head(ctx, "after"); h != 1 {
		t.Fatalf("append after recovery: head %d, want 1", h)
	}
}

// killCrashChild runs TestJournalCrashChild on path, kills it (-9) after
// acks acknowledgements, and returns each writer's last acknowledged seq.
func killCrashChild(t *testing.T, path string, acks int) map[string]uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	sc := bufio.NewScanner(stdout)
	for n := 0; n < acks && sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("child: %q", sc.Text())
		}
		seq, _ := strconv.ParseUint(f[1], 10, 64)
		acked[f[0]] = max(acked[f[0]], seq)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("child acknowledged nothing")
	}
	return acked
}

// checkAcked fails unless s has every acknowledged append of the crash
// child: events, head and checkpoint.
func checkAcked(ctx context.Context, t *testing.T, s *Store, acked map[string]uint64) {
	t.Helper()
	for name, seq := range acked {
		if h, err := s.Head(ctx, name); err != nil || h < seq {
			t.Fatalf("%s: acknowledged seq %d, head %d (%v)", name, seq, h, err)
		}
		got, err := s.ReadAfter(ctx, name, 0, int(seq))
		if err != nil || len(got) != int(seq) || got[len(got)-1].Seq != seq {
			t.Fatalf("%s: read %d events up to %d, want 1..%d (%v)", name, len(got), seqs(got), seq, err)
		}
		cp, err := s.Checkpoint(ctx, name)
		if n, _ := strconv.ParseUint(string(cp), 10, 64); err != nil || n < seq {
			t.Fatalf("%s: checkpoint %q, want at least %d (%v)", name, cp, seq, err)
		}
	}
}

// headsInTree counts the streams whose head the B-tree file itself has.
func headsInTree(t *testing.T, path string) int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	_ = db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bktHeads).Stats().KeyN
		return nil
	})
	return n
}

// tearJournalTail writes half a frame where the next frame would go and
// returns that offset.
func tearJournalTail(t *testing.T, path string) int64 {
	t.Helper()
	j, err := openJournal(path, storeID(t, strings.TrimSuffix(path, JournalSuffix)), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	end, err := j.scan(journalHdrLen, func([]byte, int64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var hdr [frameHdrLen + 4]byte
	binary.BigEndian.PutUint32(hdr[:4], 4096)
	if _, err := j.f.WriteAt(hdr[:], end); err != nil {
		t.Fatal(err)
	}
	return end
}

// Frames of an older generation, left in the reused file, end the scan.
func TestJournalGenerationsDoNotMix(t *testing.T) {
	t.Parallel()
	j, err := openJournal(filepath.Join(t.TempDir(), "j"), [16]byte{1}, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	frame := func(s string) []byte { return append(make([]byte, frameHdrLen), s...) }
	for _, s := range []string{"a", "bb", "ccc"} {
		if _, err := j.append(frame(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.reset(2); err != nil {
		t.Fatal(err)
	}
	if _, err := j.append(frame("d")); err != nil {
		t.Fatal(err)
	}
	var got []string
	end, err := j.scan(journalHdrLen, func(rec []byte, _ int64) error { got = append(got, string(rec)); return nil })
	if err != nil || len(got) != 1 || got[0] != "d" || end != j.size {
		t.Fatalf("scan after reset = %q, end %d (size %d), %v; want only [d]", got, end, j.size, err)
	}
}

// A journal past its bound is emptied once applied and reused, so the
// file stays bounded, and everything written is still there after a
// reopen.
func TestJournalStaysBounded(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	const bound = 4 << 10
	s := openT(t, path, Options{JournalMaxBytes: bound, NoSync: true})
	for i := range 400 {
		commitT(t, s, stream.Append{Stream: fmt.Sprint("s", i%7), Events: events("x", uint64(i/7+1), 1)})
	}
	fi, err := os.Stat(path + JournalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > bound+growStep {
		t.Fatalf("journal grew to %d bytes, bound %d", fi.Size(), bound)
	}
	if s.jr.gen < 3 {
		t.Fatalf("journal generation %d: it never started over", s.jr.gen)
	}
	closeT(t, s)
	s = openT(t, path, Options{})
	for i := range 7 {
		got, err := s.ReadAfter(ctx, fmt.Sprint("s", i), 0, 1000)
		if want := 400/7 + btoi(i < 400%7); err != nil || len(got) != want {
			t.Fatalf("s%d: %d events, want %d (%v)", i, len(got), want, err)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// An acknowledged append the B-tree refuses makes the store refuse
// reads and writes (it can no longer show what it acknowledged), and
// the append is applied from the journal once the file is repaired.
func TestJournalApplyFailureSurvivesClose(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, Options{})
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready of a fresh store: %v", err)
	}
	plantPoison(t, s)
	cp := &stream.Checkpoint{Emitter: "e", Value: []byte("kept")}
	if err := s.Commit(ctx, stream.Append{Stream: "poison", Events: events("poison", 1, 1), Checkpoint: cp}); err != nil {
		t.Fatalf("journaled append: %v", err)
	}
	if _, err := s.Head(ctx, "poison"); !errors.Is(err, ErrApply) {
		t.Fatalf("read after a failed apply: %v, want ErrApply", err)
	}
	if err := s.Ready(); !errors.Is(err, ErrApply) || !errors.Is(err, stream.ErrStoreUnavailable) {
		t.Fatalf("Ready after a failed apply: %v, want ErrApply (store unavailable)", err)
	}
	if err := s.Commit(ctx, stream.Append{Stream: "ok", Events: events("ok", 1, 1)}); !errors.Is(err, ErrApply) {
		t.Fatalf("write after a failed apply: %v, want ErrApply", err)
	}
	if err := s.Close(ctx); !errors.Is(err, ErrApply) {
		t.Fatalf("Close: %v, want ErrApply", err)
	}
	if _, err := Open(ctx, path, Options{}, nil); !errors.Is(err, ErrApply) {
		t.Fatalf("Open with the poison still there: %v, want ErrApply", err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktHistory).Delete([]byte("poison")) }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s = openT(t, path, Options{})
	if got, _ := s.Checkpoint(ctx, "e"); string(got) != "kept" {
		t.Fatalf("checkpoint after repair = %q, want the journaled one", got)
	}
	if h, _ := s.Head(ctx, "poison"); h != 1 {
		t.Fatalf("head after repair = %d, want 1", h)
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready after repair: %v", err)
	}
	closeT(t, s)
	if err := s.Ready(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready after Close: %v, want ErrClosed", err)
	}
}

// A file where the journal belongs that is not one is refused, and left
// as it was.
func TestForeignJournalRefused(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	junk := []byte("not a journal, somebody's notes\n")
	if err := os.WriteFile(path+JournalSuffix, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testCtx(t), path, Options{}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	if got, _ := os.ReadFile(path + JournalSuffix); string(got) != string(junk) {
		t.Fatalf("foreign journal changed to %q", got)
	}
}

// A read waits for the appends acknowledged before it, even when the
// applier would otherwise hold them back.
func TestReadSeesJournaledAppends(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), holdInJournal)
	commitT(t, s, stream.Append{Stream: "a", Events: events("a", 1, 3), Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("3")}})
	if st := s.Stats(); st.Applies != 0 {
		t.Fatalf("%d applies before any read; the journal is not in front", st.Applies)
	}
	if got, err := s.ReadAfter(ctx, "a", 0, 10); err != nil || len(got) != 3 {
		t.Fatalf("ReadAfter = %v, %v; want 3 events", seqs(got), err)
	}
	if st := s.Stats(); st.Applies != 1 {
		t.Fatalf("applies = %d after one read, want 1", st.Applies)
	}
}

// storeID reads the id a closed store file ties its journal to.
func storeID(t *testing.T, path string) (id [16]byte) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		id = [16]byte(tx.Bucket(bktMeta).Get(keyStoreID))
		return nil
	})
	return id
}

// A journal left by another store file (the file was deleted or
// replaced) is not replayed into this one: it is moved aside, kept.
func TestJournalOfAnotherStoreIsMovedAside(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := openT(t, path, holdInJournal)
	commitT(t, s, stream.Append{Stream: "old", Events: events("old", 1, 3)})
	closeT(t, s)
	// Leave the journal with a record the file does not have, as after
	// a crash, then replace the file.
	j, err := openJournal(path+JournalSuffix, storeID(t, path), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	rec := binary.AppendUvarint(make([]byte, frameHdrLen), 1)
	rec = appendRecord(rec, &stream.Append{Stream: "ghost", Events: events("ghost", 1, 1)})
	j.size = journalHdrLen
	if _, err := j.append(rec); err != nil {
		t.Fatal(err)
	}
	_ = j.close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, Options{})
	for _, name := range []string{"old", "ghost"} {
		if h, err := s.Head(ctx, name); err != nil || h != 0 {
			t.Fatalf("stream %s of the other store: head %d (%v), want nothing", name, h, err)
		}
	}
	aside, _ := filepath.Glob(path + JournalSuffix + ".other-*")
	if len(aside) != 1 {
		t.Fatalf("journal moved aside to %v, want one file", aside)
	}
	commitT(t, s, stream.Append{Stream: "new", Events: events("new", 1, 1)})
	if h, _ := s.Head(ctx, "new"); h != 1 {
		t.Fatalf("new store: head %d, want 1", h)
	}
}

// Reads and writes of what appends never write (specs, queues) neither
// wait for the applier nor cut its linger short; an op on what appends
// write (DeleteStream) still comes after the appends queued before it.
func TestDirectOpsLeaveTheApplierAlone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, holdInJournal)
	qd, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commitT(t, s, stream.Append{Stream: "a", Events: events("a", 1, 1)})
	if err := s.PutSpec(ctx, emitter.Spec{ID: "e", Kind: "log"}); err != nil {
		t.Fatal(err)
	}
	k := queue.Key{Tenant: "t", Queue: "q"}
	if _, err := qd.PostMessages(ctx, k, "3f1b4c2e-1111-4a2b-9c3d-1234567890ab", []queue.NewMessage{{Body: []byte(`1`), TTL: time.Hour}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListSpecs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := qd.ListQueues(ctx, "t", "", 10); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Applies != 0 {
		t.Fatalf("%d applies after spec and queue reads and writes; want 0", st.Applies)
	}
	if err := s.DeleteStream(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Applies != 1 {
		t.Fatalf("applies = %d after DeleteStream; want 1 (the held append first)", st.Applies)
	}
	closeT(t, s)
	s = openT(t, path, Options{})
	if h, _ := s.Head(ctx, "a"); h != 0 {
		t.Fatalf("deleted stream came back: head %d", h)
	}
	if specs, _ := s.ListSpecs(ctx); len(specs) != 1 {
		t.Fatalf("specs after reopen: %v", specs)
	}
}

// Once the cause of a failed apply is gone (space freed, here the damage
// repaired), a retry applies the record and the store serves again
// without a restart.
func TestJournalApplyRecoversWhenTheCauseIsGone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	plantPoison(t, s)
	cp := &stream.Checkpoint{Emitter: "e", Value: []byte("kept")}
	if err := s.Commit(ctx, stream.Append{Stream: "poison", Events: events("poison", 1, 1), Checkpoint: cp}); err != nil {
		t.Fatalf("journaled append: %v", err)
	}
	if _, err := s.Head(ctx, "poison"); !errors.Is(err, ErrApply) {
		t.Fatalf("read while the apply fails: %v, want ErrApply", err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktHistory).Delete([]byte("poison")) }); err != nil {
		t.Fatal(err)
	}
	var h uint64
	var err error
	for i := 0; i < 3000 && ctx.Err() == nil; i++ { // retries back off to 1 s
		if h, err = s.Head(ctx, "poison"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || h != 1 {
		t.Fatalf("after the repair: head %d, %v; want 1 and no error", h, err)
	}
	if got, _ := s.Checkpoint(ctx, "e"); string(got) != "kept" {
		t.Fatalf("checkpoint = %q, want the journaled one", got)
	}
	commitT(t, s, stream.Append{Stream: "after", Events: events("after", 1, 1)})
	if h, _ := s.Head(ctx, "after"); h != 1 {
		t.Fatalf("write after recovery: head %d", h)
	}
}

// ErrApply says "temporary" to layers that know only core/stream or
// core/queue.
func TestErrApplyIsStoreUnavailable(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("x: %w", ErrApply)
	if !errors.Is(err, stream.ErrStoreUnavailable) || !errors.Is(err, queue.ErrUnavailable) {
		t.Fatal("ErrApply does not wrap stream.ErrStoreUnavailable and queue.ErrUnavailable")
	}
}
