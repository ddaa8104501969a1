package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTmpfs mounts a tmpfs of size bytes and returns its path; it is
// unmounted when the test ends (after the sidecars the test started, which
// clean up later-registered first). Mounting needs root: without it the
// test is skipped with one loud line, and fails under CI=true.
func requireTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	msg := "DISK-FULL TEST NOT RUN: it mounts a small tmpfs (`mount -t tmpfs -o size=" + size + "`), which needs root"
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: run the e2e suite as root)")
		}
		t.Skip(msg)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: mount: %v: %s", msg, err, out)
		}
		t.Skipf("%s: mount failed (no CAP_SYS_ADMIN?): %v: %s", msg, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file into dir until the filesystem is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v, want ENOSPC", dir, err)
			}
			// The last bytes, in smaller writes.
			for _, err := f.Write(buf[:512]); err == nil; _, err = f.Write(buf[:512]) {
			}
			return path
		}
	}
	t.Fatalf("%s never filled", dir)
	return ""
}

// unavailable checks a refused write: 503, code unavailable, Retry-After.
func unavailable(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable || a.errorCode() != "unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("%s on a full disk: %d %q Retry-After %q, want 503 unavailable with Retry-After",
			what, a.status, a.body, a.header.Get("Retry-After"))
	}
}

// fibNext is one POST /fib/next: its position when acknowledged.
func fibNext(t *testing.T, sc *sidecar) (int, answer) {
	t.Helper()
	a := send(t, http.MethodPost, sc.URL("/fib/next"), "", nil)
	if a.status != http.StatusOK {
		return 0, a
	}
	var r struct {
		Position int
		Value    string
	}
	a.decode(t, &r)
	if r.Value != fib(r.Position) {
		t.Fatalf("fib position %d value %s, want %s", r.Position, r.Value, fib(r.Position))
	}
	return r.Position, a
}

// A full disk refuses writes with 503 unavailable and Retry-After on every
// path (fibonacci commands, tracker publishes, queue posts, a file-tailing
// log emitter's batches), and a refused write leaves no trace: once space
// is freed, fibonacci continues at the next position, the tracker stream
// has every acknowledged publish once with no hole and no gap, the log
// emitter has every line once, and a restart answers the same.
func TestDiskFullLeavesNoTrace(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	g := &guestLog{t: t, path: filepath.Join(root, "console.log")}
	g.write(20)
	data := requireTmpfs(t, "24m")
	args := []string{"--log-root", root}
	sc := startSidecar(t, data, args...)

	var created struct{ ID string }
	body := fmt.Sprintf(`{"source":"file","path":%q,"guest":"vm-full"}`, g.path)
	if code := do(t, http.MethodPut, sc.URL("/log"), body, &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	waitLines(t, sc, created.ID, 20)
	fibAcked := 0
	for range 5 {
		pos, a := fibNext(t, sc)
		if pos != fibAcked+1 {
			t.Fatalf("fib/next: %d %q, want position %d", a.status, a.body, fibAcked+1)
		}
		fibAcked = pos
	}
	tracked := map[int]string{} // acknowledged seq -> data
	publish := func(i int, pad int) answer {
		t.Helper()
		d := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", pad))
		a := send(t, http.MethodPost, sc.URL("/track/full"), d, nil)
		if a.status == http.StatusAccepted || a.status == http.StatusOK {
			var s struct{ Seq int }
			a.decode(t, &s)
			if _, dup := tracked[s.Seq]; dup {
				t.Fatalf("seq %d acknowledged twice", s.Seq)
			}
			tracked[s.Seq] = d
		}
		return a
	}
	for i := range 5 {
		if a := publish(i, 10); a.status >= 300 {
			t.Fatalf("publish %d: %d %q", i, a.status, a.body)
		}
	}
	if code, err := qdo(t, http.MethodPost, sc.URL("/v2/queues/full/messages"), `{"messages":[{"ttl":600,"body":"before"}]}`, nil); err != nil || code != http.StatusCreated {
		t.Fatalf("queue post: %d %v", code, err)
	}

	filler := fillDisk(t, data)
	// Writes fill what room is left (the journal's zero-filled space, the
	// B-tree's free pages) and then are refused; every refusal is a 503.
	refused := 0
	for i := 5; i < 2000 && refused < 3; i++ {
		a := publish(i, 4096)
		switch a.status {
		case http.StatusAccepted, http.StatusOK:
		default:
			unavailable(t, "POST /track", a)
			refused++
		}
	}
	if refused < 3 {
		t.Fatal("a full disk never refused a tracker publish")
	}
	for range 3 {
		pos, a := fibNext(t, sc)
		if pos != 0 {
			if pos != fibAcked+1 {
				t.Fatalf("fib/next on a full disk acknowledged position %d, want %d", pos, fibAcked+1)
			}
			fibAcked = pos
			continue
		}
		unavailable(t, "POST /fib/next", a)
	}
	unavailable(t, "POST queue messages", send(t, http.MethodPost, sc.URL("/v2/queues/full/messages"),
		`{"messages":[{"ttl":600,"body":"refused"}]}`, map[string]string{"X-Project-Id": qProject, "Client-ID": qClient, "Content-Type": "application/json"}))
	g.write(30) // the log emitter reads them and cannot store them

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The store recovers by itself; each attempt before it did is refused
	// and must change nothing.
	next := 0
	eventually(t, "fib/next to succeed once space is freed", 60*time.Second, func() bool {
		pos, a := fibNext(t, sc)
		if pos == 0 {
			unavailable(t, "POST /fib/next while recovering", a)
			return false
		}
		next = pos
		return true
	})
	if next != fibAcked+1 {
		t.Fatalf("fib/next after the disk was freed: position %d, want %d (refused commands left a trace)", next, fibAcked+1)
	}
	fibAcked = next
	for i := 5000; i < 5005; i++ {
		if a := publish(i, 10); a.status >= 300 {
			t.Fatalf("publish after recovery: %d %q", a.status, a.body)
		}
	}
	waitLines(t, sc, created.ID, 50)
	checkTracked(t, sc, tracked)

	if code := sc.Stop(t); code != 0 {
		t.Fatalf("SIGTERM exit code %d", code)
	}
	sc = startSidecar(t, data, args...)
	if strings.Contains(sc.Logs(), "damaged record") {
		t.Fatalf("a clean restart reported journal damage:\n%s", sc.Logs())
	}
	if pos, a := fibNext(t, sc); pos != fibAcked+1 {
		t.Fatalf("fib/next after a restart: %d %q, want position %d (same as without a restart)", a.status, a.body, fibAcked+1)
	}
	checkTracked(t, sc, tracked)
	g.write(10)
	waitLines(t, sc, created.ID, 60)
	var page struct {
		Messages []struct{ Body string }
	}
	if code, err := qdo(t, http.MethodGet, sc.URL("/v2/queues/full/messages?echo=true"), "", &page); err != nil || code != http.StatusOK ||
		len(page.Messages) != 1 || page.Messages[0].Body != "before" {
		t.Fatalf("queue after the full disk: %d %v %+v, want only the acknowledged message", code, err, page.Messages)
	}
}

// checkTracked reads the tracker stream over SSE from the start: seqs
// 1..N with no hole and no gap marker, each the acknowledged publish.
func checkTracked(t *testing.T, sc *sidecar, tracked map[int]string) {
	t.Helper()
	sse := openSSE(t, sc.URL("/api/v1/streams/track:full/sse?from=start"), "")
	defer sse.Close()
	for seq := 1; seq <= len(tracked); seq++ {
		ev, err := sse.Next()
		if err != nil {
			t.Fatalf("tracker stream after seq %d: %v", seq-1, err)
		}
		want, ok := tracked[seq]
		if ev.Event == "gap" || ev.ID != uint64(seq) || !ok || !sameJSON(ev.Data, want) {
			t.Fatalf("tracker event %d (%s, %.60s): want seq %d = acknowledged publish %.60s (found: %v)", ev.ID, ev.Event, ev.Data, seq, want, ok)
		}
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// A stream without history (magic) starts over after a kill -9 beyond
// every seq it handed out (seqs are leased in blocks). A client resuming
// across it is told so by a reset event with the new start, not a gap
// over seqs that never existed; `sidestream tail` prints it as a reset.
func TestResumeAcrossKillOfStreamWithoutHistoryIsAReset(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	sse := openSSE(t, sc.URL("/api/v1/streams/magic/sse"), "")
	var last uint64
	for last < 3 {
		ev, err := sse.Next()
		if err != nil {
			t.Fatal(err)
		}
		last = ev.ID
	}
	sse.Close()
	addr := sc.addr
	sc.Kill()
	sc = startSidecar(t, dir, "--listen", addr)

	resumed := openSSE(t, sc.URL("/api/v1/streams/magic/sse"), fmt.Sprint(last))
	ev, err := resumed.Next()
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Start uint64 }
	ev.decode(t, &r)
	if ev.Event != "reset" || r.Start <= last+1 || ev.ID != r.Start-1 {
		t.Fatalf("first event after resuming at %d across a kill: %q id %d data %s, want reset with a start beyond %d and id start-1",
			last, ev.Event, ev.ID, ev.Data, last+1)
	}
	if ev, err = resumed.Next(); err != nil || ev.Event == "gap" || ev.ID != r.Start {
		t.Fatalf("after the reset: %+v %v, want the event at seq %d", ev, err, r.Start)
	}

	p := startTail(t, "--server", "http://"+addr, "--after", fmt.Sprint(last), "magic")
	eventually(t, "tail to print the reset", 30*time.Second, func() bool {
		return strings.Contains(p.Stderr(), fmt.Sprintf("reset: the stream keeps no history and started over at seq %d", r.Start))
	})
	if strings.Contains(p.Stderr(), "gap") {
		t.Fatalf("tail reported a gap across the restart:\n%s", p.Stderr())
	}
}
