package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

func TestSpecsAndCheckpointsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, Options{})
	specs := []emitter.Spec{
		{ID: "b", Kind: "log", Config: json.RawMessage(`{"path":"/var/log/x"}`), CreatedAt: t0.Add(time.Minute),
			Labels: map[string]string{"guest": "vm-1"}, Retention: emitter.Retention{Persist: true, MaxEvents: 10, MaxAge: emitter.Duration(time.Hour)}},
		{ID: "c", Kind: "time", Config: json.RawMessage(`{}`), CreatedAt: t0},
		{ID: "a", Kind: "magic", Config: json.RawMessage(`{}`), CreatedAt: t0.Add(time.Minute)},
	}
	for _, sp := range specs {
		if err := s.PutSpec(ctx, sp); err != nil {
			t.Fatalf("PutSpec(%s): %v", sp.ID, err)
		}
	}
	commitT(t, s, stream.Append{Stream: "b", Events: events("b", 1, 2), Checkpoint: &stream.Checkpoint{Emitter: "b", Value: []byte("pos=2")}})
	commitT(t, s, stream.Append{Stream: "a", Checkpoint: &stream.Checkpoint{Emitter: "a", Value: []byte{}}})
	closeT(t, s)

	s = openT(t, path, Options{})
	got, err := s.ListSpecs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, sp := range got {
		ids[i] = sp.ID
	}
	if want := []string{"c", "a", "b"}; !slices.Equal(ids, want) {
		t.Fatalf("ListSpecs order = %v, want %v (CreatedAt then ID)", ids, want)
	}
	b := got[2]
	if b.Kind != "log" || string(b.Config) != `{"path":"/var/log/x"}` || b.Labels["guest"] != "vm-1" ||
		!b.CreatedAt.Equal(specs[0].CreatedAt) || b.Retention != specs[0].Retention {
		t.Fatalf("spec b after reopen = %+v, want %+v", b, specs[0])
	}
	for _, tc := range []struct {
		id   string
		want []byte
	}{{"b", []byte("pos=2")}, {"a", []byte{}}, {"c", nil}, {"nope", nil}} {
		cp, err := s.Checkpoint(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cp, tc.want) || (cp == nil) != (tc.want == nil) {
			t.Errorf("Checkpoint(%s) = %q (nil=%v), want %q (nil=%v)", tc.id, cp, cp == nil, tc.want, tc.want == nil)
		}
	}

	if err := s.DeleteSpec(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSpec(ctx, "b"); !errors.Is(err, emitter.ErrNotFound) {
		t.Fatalf("second DeleteSpec = %v, want ErrNotFound", err)
	}
	if cp, _ := s.Checkpoint(ctx, "b"); cp != nil {
		t.Fatalf("checkpoint survived DeleteSpec: %q", cp)
	}
	got, _ = s.ListSpecs(ctx)
	if len(got) != 2 {
		t.Fatalf("after delete %d specs, want 2", len(got))
	}
	if err := s.PutSpec(ctx, emitter.Spec{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutSpec without id = %v, want ErrInvalid", err)
	}
}

func TestCommitAndReadAfter(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, Options{})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 3)})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 4, 7)})
	commitT(t, s, stream.Append{Stream: "other", Events: events("other", 1, 5)})
	closeT(t, s)

	s = openT(t, path, Options{})
	want := events("s", 1, 10)
	got, err := s.ReadAfter(ctx, "s", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadAfter got %v, want seqs 1..10", seqs(got))
	}
	for i, e := range got {
		w := want[i]
		if e.Stream != "s" || e.Seq != w.Seq || e.Type != w.Type || !e.Time.Equal(w.Time) || string(e.Data) != string(w.Data) {
			t.Fatalf("event %d = %+v, want %+v", i, e, w)
		}
	}
	cases := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{after: 5, limit: 3, want: seqRange(6, 8)},
		{after: 8, limit: 100, want: seqRange(9, 10)},
		{after: 10, limit: 100, want: nil},
		{after: 0, limit: 0, want: nil},
		{after: ^uint64(0), limit: 10, want: nil},
	}
	for _, tc := range cases {
		got, err := s.ReadAfter(ctx, "s", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(got), tc.want) {
			t.Errorf("ReadAfter(after=%d, limit=%d) = %v, want %v", tc.after, tc.limit, seqs(got), tc.want)
		}
	}
	if got, err := s.ReadAfter(ctx, "missing", 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("ReadAfter(missing) = %v, %v", got, err)
	}
	if h, _ := s.Head(ctx, "s"); h != 10 {
		t.Fatalf("Head = %d, want 10", h)
	}
}

func TestReadAfterCapsLimit(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{NoSync: true})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, MaxReadLimit+5)})
	got, err := s.ReadAfter(testCtx(t), "s", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxReadLimit || got[len(got)-1].Seq != MaxReadLimit {
		t.Fatalf("ReadAfter with huge limit returned %d events, want %d", len(got), MaxReadLimit)
	}
}

func TestReadBeforePaging(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, 25)})
	var pages [][]uint64
	before := uint64(0)
	for range 10 {
		page, err := s.ReadBefore(ctx, "s", before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, seqs(page))
		before = page[0].Seq
	}
	want := [][]uint64{seqRange(16, 25), seqRange(6, 15), seqRange(1, 5)}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want %v", pages, want)
	}
	got, _ := s.ReadBefore(ctx, "s", 1000, 3)
	if !slices.Equal(seqs(got), seqRange(23, 25)) {
		t.Fatalf("ReadBefore(1000) = %v, want 23..25", seqs(got))
	}
	if got[0].Stream != "s" || string(got[0].Data) != `{"n":23}` {
		t.Fatalf("ReadBefore event = %+v", got[0])
	}
}

// Many goroutines each own a stream and commit in order; after reopening
// every append is there, in order, with its last checkpoint.
func TestConcurrentCommitsDurableAndOrdered(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, Options{})
	const writers, appends, per = 40, 20, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("stream-%d", w)
			for i := range appends {
				seq := uint64(i*per + 1)
				err := s.Commit(ctx, stream.Append{Stream: name, Events: events(name, seq, per),
					Checkpoint: &stream.Checkpoint{Emitter: name, Value: fmt.Appendf(nil, "%d", seq+per-1)}})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	closeT(t, s)

	s = openT(t, path, Options{})
	const total = appends * per
	for w := range writers {
		name := fmt.Sprintf("stream-%d", w)
		got, err := s.ReadAfter(ctx, name, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(got), seqRange(1, total)) {
			t.Fatalf("%s seqs = %v, want 1..%d", name, seqs(got), total)
		}
		if h, _ := s.Head(ctx, name); h != total {
			t.Fatalf("%s head = %d, want %d", name, h, total)
		}
		if cp, _ := s.Checkpoint(ctx, name); string(cp) != fmt.Sprint(total) {
			t.Fatalf("%s checkpoint = %q, want %d", name, cp, total)
		}
	}
}

// With real fsyncs and 100 writers, writers must share transactions.
func TestGroupCommitGroups(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	const writers, rounds = 100, 5
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed sync.Map
	for w := range writers {
		wg.Go(func() {
			<-start
			name := fmt.Sprintf("w%d", w)
			for i := range rounds {
				if err := s.Commit(ctx, stream.Append{Stream: name, Events: events(name, uint64(i+1), 1)}); err != nil {
					failed.Store(name, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("%v: %v", k, v); return true })
	st := s.Stats()
	if st.Appends != writers*rounds || st.Events != writers*rounds {
		t.Fatalf("stats = %+v, want %d appends", st, writers*rounds)
	}
	if st.Transactions >= st.Appends || st.MaxGroup < 2 {
		t.Fatalf("no grouping: %d transactions for %d appends (max group %d)", st.Transactions, st.Appends, st.MaxGroup)
	}
	t.Logf("%d appends in %d transactions, max group %d", st.Appends, st.Transactions, st.MaxGroup)
}

// plantPoison makes stream "poison" unwritable: a plain value sits where
// its history bucket would be.
func plantPoison(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktHistory).Put([]byte("poison"), []byte("x")) })
	if err != nil {
		t.Fatal(err)
	}
}

// Events, head and checkpoint of one append are one journal record: they
// commit together or not at all, before and after a reopen, and a bad
// append in a group fails alone (a B-tree refusal: see
// TestJournalApplyFailureSurvivesClose).
func TestAppendIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, Options{})
	commitT(t, s, stream.Append{Stream: "ok", Events: events("ok", 1, 2), Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("v1")}})
	before := s.Stats().Transactions
	commitT(t, s, stream.Append{Stream: "ok", Events: events("ok", 3, 2), Head: 9, Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("v2")}})
	if n := s.Stats().Transactions - before; n != 1 {
		t.Fatalf("one append took %d transactions", n)
	}

	const good = 30
	var wg sync.WaitGroup
	var badErr error
	goodErrs := make(chan error, good)
	wg.Go(func() {
		// A nil event makes the whole append invalid, checkpoint included.
		badErr = s.Commit(ctx, stream.Append{Stream: "bad", Events: []*event.Event{events("bad", 1, 1)[0], nil}, Head: 50,
			Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("bad")}})
	})
	for i := range good {
		wg.Go(func() {
			name := fmt.Sprintf("g%d", i)
			goodErrs <- s.Commit(ctx, stream.Append{Stream: name, Events: events(name, 1, 1)})
		})
	}
	wg.Wait()
	close(goodErrs)
	if !errors.Is(badErr, ErrInvalid) {
		t.Fatalf("bad append: %v, want ErrInvalid", badErr)
	}
	for err := range goodErrs {
		if err != nil {
			t.Fatalf("good append failed beside a bad one: %v", err)
		}
	}
	check := func(when string) {
		t.Helper()
		if cp, _ := s.Checkpoint(ctx, "e"); string(cp) != "v2" {
			t.Fatalf("%s: checkpoint = %q after a failed append, want v2", when, cp)
		}
		if h, _ := s.Head(ctx, "bad"); h != 0 {
			t.Fatalf("%s: head of failed append = %d, want 0", when, h)
		}
		if h, _ := s.Head(ctx, "ok"); h != 9 {
			t.Fatalf("%s: head = %d, want 9 (max of Head and seqs)", when, h)
		}
		if got, _ := s.ReadAfter(ctx, "ok", 0, 10); !slices.Equal(seqs(got), seqRange(1, 4)) {
			t.Fatalf("%s: ok seqs = %v", when, seqs(got))
		}
	}
	check("open")
	closeT(t, s)
	s = openT(t, path, Options{})
	check("reopened")
}

func TestHeadOnlyMovesForward(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	commitT(t, s, stream.Append{Stream: "s", Head: 20})
	commitT(t, s, stream.Append{Stream: "s", Events: events("s", 5, 1), Head: 7})
	if h, _ := s.Head(ctx, "s"); h != 20 {
		t.Fatalf("head = %d, want 20", h)
	}
	if h, _ := s.Head(ctx, "never"); h != 0 {
		t.Fatalf("head of unknown stream = %d", h)
	}
}

func TestHeadSurvivesPruneAndDeleteSpec(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	if err := s.PutSpec(ctx, emitter.Spec{ID: "e", Kind: "time", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	commitT(t, s, stream.Append{Stream: "e", Events: events("e", 1, 10), Head: 12, Checkpoint: &stream.Checkpoint{Emitter: "e", Value: []byte("c")}})
	n, err := s.Prune(ctx, "e", 0, t0.Add(time.Hour))
	if err != nil || n != 10 {
		t.Fatalf("Prune = %d, %v; want 10", n, err)
	}
	if h, _ := s.Head(ctx, "e"); h != 12 {
		t.Fatalf("head after prune = %d, want 12", h)
	}
	if err := s.DeleteSpec(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(ctx, "e"); h != 12 {
		t.Fatalf("head after DeleteSpec = %d, want 12", h)
	}
	commitT(t, s, stream.Append{Stream: "e", Events: events("e", 13, 2)})
	if err := s.DeleteStream(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(ctx, "e"); h != 0 {
		t.Fatalf("head after DeleteStream = %d, want 0", h)
	}
	if got, _ := s.ReadAfter(ctx, "e", 0, 10); len(got) != 0 {
		t.Fatalf("history after DeleteStream: %v", seqs(got))
	}
	if err := s.DeleteStream(ctx, "never-written"); err != nil {
		t.Fatalf("DeleteStream of unknown stream: %v", err)
	}
}

func TestPruneByCount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		n, keep     int
		wantDeleted int
	}{
		{"some", 100, 30, 70},
		{"fewer than keep", 10, 30, 0},
		{"exactly keep", 30, 30, 0},
		{"keep one", 50, 1, 49},
		// Larger than one chunk: exercises resuming across transactions.
		{"many chunks", 3*pruneMaxDeletes + 7, 10, 3*pruneMaxDeletes - 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s := openT(t, tempPath(t), Options{NoSync: true})
			commitT(t, s, stream.Append{Stream: "s", Events: events("s", 1, tc.n)})
			txBefore := s.Stats().Transactions
			n, err := s.Prune(ctx, "s", tc.keep, time.Time{})
			if err != nil || n != tc.wantDeleted {
				t.Fatalf("Prune = %d, %v; want %d", n, err, tc.wantDeleted)
			}
			got, _ := s.ReadAfter(ctx, "s", 0, MaxReadLimit)
			from := uint64(max(tc.n-tc.keep, 0) + 1)
			if !slices.Equal(seqs(got), seqRange(from, uint64(tc.n))) {
				t.Fatalf("left %d events from %v, want %d..%d", len(got), seqs(got)[:min(3, len(got))], from, tc.n)
			}
			if tc.wantDeleted > pruneMaxDeletes && s.Stats().Transactions-txBefore < 2 {
				t.Fatalf("a %d-event prune ran in one transaction", tc.wantDeleted)
			}
		})
	}
}

func TestPruneByAge(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	evs := events("s", 1, 20) // event seq i has time t0 + i s
	evs[17].Time = t0         // seq 18 is old although its seq is high
	evs[3].Time = time.Time{} // seq 4 has no time
	commitT(t, s, stream.Append{Stream: "s", Events: evs})
	n, err := s.Prune(ctx, "s", 0, t0.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.ReadAfter(ctx, "s", 0, 100)
	want := []uint64{10, 11, 12, 13, 14, 15, 16, 17, 19, 20}
	if n != 10 || !slices.Equal(seqs(got), want) {
		t.Fatalf("Prune deleted %d, left %v; want 10 deleted, left %v", n, seqs(got), want)
	}
	// Count and age together: keep 5 newest, and nothing older than 16s.
	n, err = s.Prune(ctx, "s", 5, t0.Add(16*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.ReadAfter(ctx, "s", 0, 100)
	if want := []uint64{16, 17, 19, 20}; n != 6 || !slices.Equal(seqs(got), want) {
		t.Fatalf("Prune deleted %d, left %v; want 6 deleted, left %v", n, seqs(got), want)
	}
	if got, _ := s.ReadAfter(ctx, "s", 0, 1); got[0].Time != evs[15].Time {
		t.Fatalf("time round trip: %v != %v", got[0].Time, evs[15].Time)
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	cases := []stream.Append{
		{},
		{Stream: "s", Events: append(events("s", 1, 1), nil)},
		{Stream: "s", Checkpoint: &stream.Checkpoint{}},
	}
	for _, a := range cases {
		if err := s.Commit(ctx, a); !errors.Is(err, ErrInvalid) {
			t.Errorf("Commit(%+v) = %v, want ErrInvalid", a, err)
		}
	}
	if err := s.DeleteStream(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("DeleteStream(\"\") = %v", err)
	}
}

func TestCommitRespectsContext(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if err := s.Commit(ctx, stream.Append{Stream: "s", Events: events("s", 1, 1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with canceled ctx = %v", err)
	}
	if h, _ := s.Head(testCtx(t), "s"); h != 0 {
		t.Fatalf("canceled commit was written (head %d)", h)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), Options{})
	closeT(t, s)
	closeT(t, s) // idempotent
	if err := s.Commit(ctx, stream.Append{Stream: "s", Events: events("s", 1, 1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close = %v, want ErrClosed", err)
	}
	if _, err := s.ReadAfter(ctx, "s", 0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAfter after Close = %v", err)
	}
	if _, err := s.ListSpecs(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListSpecs after Close = %v", err)
	}
	if _, err := s.Prune(ctx, "s", 1, time.Time{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Prune after Close = %v", err)
	}
}

// Writers racing Close either commit durably or get ErrClosed; none hangs.
func TestCloseWhileCommitting(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, Options{NoSync: true})
	var wg sync.WaitGroup
	acked := make([]uint64, 20)
	for w := range acked {
		wg.Go(func() {
			name := fmt.Sprint("w", w)
			for i := uint64(1); i <= 200; i++ {
				if err := s.Commit(ctx, stream.Append{Stream: name, Events: events(name, i, 1)}); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Commit: %v", err)
					}
					return
				}
				acked[w] = i
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	closeT(t, s)
	wg.Wait()
	s = openT(t, path, Options{})
	for w, n := range acked {
		if h, _ := s.Head(ctx, fmt.Sprint("w", w)); h < n {
			t.Fatalf("writer %d acknowledged seq %d but head is %d", w, n, h)
		}
	}
}

// A failing write in a B-tree group (specs, queues, prunes) is replayed
// alone; the others still commit, in group order.
func TestGroupReplaysAfterFailure(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{})
	put := func(k string) func(*bbolt.Tx, *arena) error {
		return func(tx *bbolt.Tx, _ *arena) error { return tx.Bucket(bktMeta).Put([]byte(k), []byte("v")) }
	}
	bad := func(*bbolt.Tx, *arena) error { return errors.New("refused") }
	group := []*request{
		{op: put("test-a"), done: make(chan error, 1)},
		{op: bad, done: make(chan error, 1)},
		{op: put("test-b"), done: make(chan error, 1)},
	}
	s.commitGroup(group, &arena{})
	for i, want := range []bool{true, false, true} {
		if err := <-group[i].done; (err == nil) != want {
			t.Fatalf("write %d: err = %v, want success %v", i, err, want)
		}
	}
	if st := s.Stats(); st.Replays != 1 || st.Failed != 1 {
		t.Fatalf("stats = %+v, want 1 replay, 1 failed", st)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		for _, k := range []string{"test-a", "test-b"} {
			if tx.Bucket(bktMeta).Get([]byte(k)) == nil {
				return fmt.Errorf("%s not committed", k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
