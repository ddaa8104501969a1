package bolt

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
	"github.com/sidestream/sidestream/core/queue/queuetest"
)

// The queue contract holds while every journaled post and delete stays
// out of the B-tree until a queue op needs it there.
func TestQueueDriverContractJournalHeld(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T) queue.Driver {
		s := openT(t, filepath.Join(t.TempDir(), "q.db"), holdInJournal)
		d, err := s.Queues(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// treeHas reports whether the B-tree itself holds message seq of k.
func treeHas(t *testing.T, s *Store, k queue.Key, seq uint64) bool {
	t.Helper()
	var has bool
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if b := queueBucket(tx, queueName(k)); b != nil {
			key := seqKey(seq)
			has = b.Bucket(qbktMsgs).Get(key[:]) != nil
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return has
}

// An acknowledged post is read, claimed and listed, and an acknowledged
// delete is gone from every read, while both are still only in the
// journal; neither forces the applier. After a restart (the journal
// replayed), the same holds from the B-tree.
func TestQueueReadsSeeJournaledWrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, holdInJournal)
	d, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := queue.Key{Tenant: "t", Queue: "q"}
	now := queuetest.T0
	msgs := func(bodies ...string) []queue.NewMessage {
		var out []queue.NewMessage
		for _, b := range bodies {
			out = append(out, queue.NewMessage{Body: json.RawMessage(b), TTL: time.Hour})
		}
		return out
	}
	first, err := d.PostMessages(ctx, k, queuetest.ClientA, msgs(`0`), now) // creates the queue
	if err != nil {
		t.Fatal(err)
	}
	ids, err := d.PostMessages(ctx, k, queuetest.ClientA, msgs(`1`, `2`, `3`, `4`), now)
	if err != nil {
		t.Fatal(err)
	}
	if treeHas(t, s, k, memq.ParseMessageID(ids[0])) {
		t.Fatal("the journaled post is already in the B-tree; the test needs it held in the journal")
	}
	got, err := d.GetMessages(ctx, k, ids, now)
	if err != nil || len(got) != 4 || string(got[3].Body) != "4" {
		t.Fatalf("get journaled posts: %+v %v", got, err)
	}
	c, err := d.CreateClaim(ctx, k, queue.ClaimOptions{TTL: time.Hour, Limit: 2}, now)
	if err != nil || len(c.Messages) != 2 || c.Messages[0].ID != first[0] || c.Messages[1].ID != ids[0] {
		t.Fatalf("claim: %+v %v", c.Messages, err)
	}
	if err := d.DeleteMessages(ctx, k, []string{ids[0]}, []string{c.ID}, now); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteMessages(ctx, k, []string{ids[2]}, nil, now); err != nil {
		t.Fatal(err)
	}
	want := []string{first[0], ids[1], ids[3]}
	check := func(when string) {
		t.Helper()
		p, err := d.ListMessages(ctx, k, queue.ListOptions{Limit: 10, Echo: true, IncludeClaimed: true}, now)
		if err != nil || !slices.Equal(msgIDs(p.Messages), want) {
			t.Fatalf("%s: list %v, want %v (%v)", when, msgIDs(p.Messages), want, err)
		}
		if got, _ := d.GetMessages(ctx, k, []string{ids[0], ids[2]}, now); len(got) != 0 {
			t.Fatalf("%s: deleted messages read back: %+v", when, got)
		}
		st, err := d.QueueStats(ctx, k, now)
		if err != nil || st.Total != 3 {
			t.Fatalf("%s: stats %+v %v", when, st, err)
		}
	}
	check("journaled")
	if n := s.Stats().Applies; n != 0 {
		t.Fatalf("%d applies after queue reads and writes; want 0", n)
	}
	closeT(t, s)

	s = openT(t, path, holdInJournal)
	if d, err = s.Queues(ctx); err != nil {
		t.Fatal(err)
	}
	check("after reopen")
	if !treeHas(t, s, k, memq.ParseMessageID(ids[1])) || treeHas(t, s, k, memq.ParseMessageID(ids[0])) {
		t.Fatal("after reopen the B-tree does not hold what was acknowledged")
	}
	more, err := d.PostMessages(ctx, k, queuetest.ClientA, msgs(`5`), now)
	if err != nil || memq.ParseMessageID(more[0]) <= memq.ParseMessageID(ids[3]) {
		t.Fatalf("id after reopen %v (last before %s): %v", more, ids[3], err)
	}
}

func msgIDs(ms []queue.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

const queueCrashChildEnv = "SIDESTREAM_BOLT_QUEUE_CRASH_CHILD"

// Not a test: the child process of TestQueueJournalSurvivesKill. Writers
// post batches of three messages and delete the middle one of every
// batch, printing each acknowledged post ("P id id id") and delete
// ("D id") until killed. The applier holds everything in the journal.
func TestQueueJournalCrashChild(t *testing.T) {
	path := os.Getenv(queueCrashChildEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, path, holdInJournal, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	d, err := s.Queues(ctx)
	if err != nil {
		fmt.Println("queues:", err)
		os.Exit(1)
	}
	k := queue.Key{Tenant: "t", Queue: "q"}
	body := []queue.NewMessage{{Body: json.RawMessage(`"a"`), TTL: time.Hour}, {Body: json.RawMessage(`"b"`), TTL: time.Hour}, {Body: json.RawMessage(`"c"`), TTL: time.Hour}}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(line string) {
		mu.Lock()
		fmt.Fprintln(out, line)
		_ = out.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 100000 {
				ids, err := d.PostMessages(ctx, k, queuetest.ClientA, body, time.Now())
				if err != nil {
					return
				}
				say("P " + strings.Join(ids, " "))
				if err := d.DeleteMessages(ctx, k, ids[1:2], nil, time.Now()); err != nil {
					return
				}
				say("D " + ids[1])
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// Every queue post acknowledged before a kill -9 is there after the
// restart and every acknowledged delete stays deleted, although the
// B-tree alone had neither: the journal is replayed, its torn tail
// dropped.
func TestQueueJournalSurvivesKill(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	posted, deleted := killQueueCrashChild(t, path, 3000)

	inTree := queueMsgsInTree(t, path)
	held := 0
	for i, id := range posted {
		if i%3 != 1 && !inTree[memq.ParseMessageID(id)] {
			held++
		}
	}
	if held == 0 {
		t.Fatalf("the B-tree holds all %d acknowledged posts: none was held in the journal", len(posted))
	}
	tearJournalTail(t, path+JournalSuffix)

	s := openT(t, path, Options{})
	d, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := queue.Key{Tenant: "t", Queue: "q"}
	now := time.Now()
	// The middle message of each post is deleted next; a delete in
	// flight at the kill may or may not have happened.
	var live, gone []string
	for i, id := range posted {
		switch {
		case deleted[id]:
			gone = append(gone, id)
		case i%3 != 1:
			live = append(live, id)
		}
	}
	got, err := d.GetMessages(ctx, k, live, now)
	if err != nil || len(got) != len(live) {
		t.Fatalf("after the kill: %d of %d acknowledged posts read back (%v)", len(got), len(live), err)
	}
	if got, _ := d.GetMessages(ctx, k, gone, now); len(got) != 0 {
		t.Fatalf("after the kill: %d acknowledged deletes came back, e.g. %s", len(got), got[0].ID)
	}
	c, err := d.CreateClaim(ctx, k, queue.ClaimOptions{TTL: time.Hour, Limit: 100000}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Messages {
		if deleted[m.ID] {
			t.Fatalf("deleted message %s claimed after the kill", m.ID)
		}
	}
	more, err := d.PostMessages(ctx, k, queuetest.ClientA, []queue.NewMessage{{Body: json.RawMessage(`1`), TTL: time.Hour}}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range posted {
		if memq.ParseMessageID(more[0]) <= memq.ParseMessageID(id) {
			t.Fatalf("post after the kill got id %s, not above the acknowledged %s", more[0], id)
		}
	}
}

// killQueueCrashChild runs TestQueueJournalCrashChild on path, kills it
// (-9) after lines acknowledgements, and returns the acknowledged posts
// and deletes.
func killQueueCrashChild(t *testing.T, path string, lines int) ([]string, map[string]bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestQueueJournalCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), queueCrashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var posted []string
	deleted := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for n := 0; n < lines && sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "P":
			posted = append(posted, f[1:]...)
		case len(f) == 2 && f[0] == "D":
			deleted[f[1]] = true
		default:
			t.Fatalf("child: %q", sc.Text())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if len(posted) == 0 || len(deleted) == 0 {
		t.Fatal("child acknowledged no post or no delete")
	}
	return posted, deleted
}

// queueMsgsInTree returns the seqs of the messages the B-tree file
// itself holds.
func queueMsgsInTree(t *testing.T, path string) map[uint64]bool {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seqs := map[uint64]bool{}
	_ = db.View(func(tx *bbolt.Tx) error {
		if b := queueBucket(tx, queueName(queue.Key{Tenant: "t", Queue: "q"})); b != nil {
			return b.Bucket(qbktMsgs).ForEach(func(k, _ []byte) error {
				seqs[keySeq(k)] = true
				return nil
			})
		}
		return nil
	})
	return seqs
}

// Deleting a queue whose posts and deletes are still only in the journal
// takes them along; a post afterwards starts the queue afresh, with ids
// above the old ones, and a restart shows the same.
func TestQueueDeleteWithJournaledWrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := tempPath(t)
	s := openT(t, path, holdInJournal)
	d, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := queue.Key{Tenant: "t", Queue: "q"}
	now := queuetest.T0
	one := []queue.NewMessage{{Body: json.RawMessage(`1`), TTL: time.Hour}}
	var old []string
	for range 3 { // the first creates the queue, the others are journaled
		ids, err := d.PostMessages(ctx, k, queuetest.ClientA, one, now)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, ids...)
	}
	if err := d.DeleteMessages(ctx, k, old[1:2], nil, now); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteQueue(ctx, k); err != nil {
		t.Fatal(err)
	}
	fresh, err := d.PostMessages(ctx, k, queuetest.ClientA, one, now)
	if err != nil {
		t.Fatal(err)
	}
	if memq.ParseMessageID(fresh[0]) <= memq.ParseMessageID(old[2]) {
		t.Fatalf("post after the delete got id %s, not above %s", fresh[0], old[2])
	}
	check := func(when string) {
		t.Helper()
		p, err := d.ListMessages(ctx, k, queue.ListOptions{Limit: 10, Echo: true, IncludeClaimed: true}, now)
		if err != nil || !slices.Equal(msgIDs(p.Messages), fresh) {
			t.Fatalf("%s: list %v, want %v (%v)", when, msgIDs(p.Messages), fresh, err)
		}
	}
	check("after the delete")
	closeT(t, s)
	s = openT(t, path, Options{})
	if d, err = s.Queues(ctx); err != nil {
		t.Fatal(err)
	}
	check("after reopen")
}

// The expiry sweep does not wait for journaled posts, and does not lose
// them either: one the B-tree gets only after a sweep is removed by a
// later sweep once it expired.
func TestQueueSweepComesBackForJournaledPosts(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openT(t, tempPath(t), holdInJournal)
	d, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := queue.Key{Tenant: "t", Queue: "q"}
	at := func(sec int) time.Time { return queuetest.T0.Add(time.Duration(sec) * time.Second) }
	msg := func(ttl time.Duration) []queue.NewMessage {
		return []queue.NewMessage{{Body: json.RawMessage(`1`), TTL: ttl}}
	}
	if _, err := d.PostMessages(ctx, k, queuetest.ClientA, msg(time.Hour), at(0)); err != nil { // creates the queue
		t.Fatal(err)
	}
	if _, err := d.PostMessages(ctx, k, queuetest.ClientA, msg(time.Minute), at(0)); err != nil { // journaled
		t.Fatal(err)
	}
	if n, err := d.Expire(ctx, at(1)); err != nil || n != 0 {
		t.Fatalf("sweep before the ttl removed %d (%v)", n, err)
	}
	if n := s.Stats().Applies; n != 0 {
		t.Fatalf("the sweep applied the journal (%d applies)", n)
	}
	if err := s.ap.wait(ctx); err != nil { // the applier catches up
		t.Fatal(err)
	}
	if n, err := d.Expire(ctx, at(61)); err != nil || n != 1 {
		t.Fatalf("sweep after the ttl removed %d (%v), want the journaled post", n, err)
	}
}
