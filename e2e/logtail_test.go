package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestLog appends numbered lines to a file and rotates it the way
// logrotate does (rename + create).
type guestLog struct {
	t    *testing.T
	path string
	next int
}

func (g *guestLog) write(n int) {
	g.t.Helper()
	f, err := os.OpenFile(g.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		g.t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for i := 0; i < n; i++ {
		g.next++
		fmt.Fprintf(&b, "guest line %06d\n", g.next)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		g.t.Fatal(err)
	}
}

func (g *guestLog) rotate() {
	g.t.Helper()
	if err := os.Rename(g.path, g.path+".1"); err != nil {
		g.t.Fatal(err)
	}
}

// A real file appended to and rotated while the sidecar stops (SIGTERM),
// restarts and is killed (SIGKILL): every line reaches the stream exactly
// once, in order.
func TestLogTailRotationAcrossRestartsExactlyOnce(t *testing.T) {
	t.Parallel()
	dir, root := t.TempDir(), t.TempDir()
	g := &guestLog{t: t, path: filepath.Join(root, "console.log")}
	g.write(100)
	args := []string{"--log-root", root}
	sc := startSidecar(t, dir, args...)
	var created struct{ ID string }
	body := fmt.Sprintf(`{"source":"file","path":%q,"guest":"vm-17"}`, g.path)
	if code := do(t, http.MethodPut, sc.URL("/log"), body, &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	waitLines(t, sc, created.ID, 100)
	g.write(50)
	g.rotate()
	g.write(50)
	waitLines(t, sc, created.ID, 200)

	if code := sc.Stop(t); code != 0 {
		t.Fatalf("SIGTERM exit code %d", code)
	}
	g.write(30) // while down, into the file that is about to rotate
	g.rotate()
	g.write(30)
	sc = startSidecar(t, dir, args...)
	g.write(40)
	waitLines(t, sc, created.ID, 300)

	g.write(60)
	sc.Kill() // no drain at all: resume from the last durable checkpoint
	g.rotate()
	g.write(40)
	sc = startSidecar(t, dir, args...)
	got := waitLines(t, sc, created.ID, 400)
	for i, line := range got {
		if want := fmt.Sprintf("guest line %06d", i+1); line != want {
			t.Fatalf("line %d is %q, want %q", i, line, want)
		}
	}
}

// waitLines reads the emitter's kept history until it holds want lines and
// returns them; more than want is a duplicate and fails.
func waitLines(t *testing.T, sc *sidecar, id string, want int) []string {
	t.Helper()
	var lines []string
	eventually(t, fmt.Sprintf("%d lines in the history of %s", want, id), 60*time.Second, func() bool {
		lines = historyLines(t, sc, id)
		if len(lines) > want {
			t.Fatalf("history holds %d lines, want %d: duplicates", len(lines), want)
		}
		return len(lines) == want
	})
	return lines
}

func historyLines(t *testing.T, sc *sidecar, id string) []string {
	t.Helper()
	var lines []string
	var after uint64
	for page := 0; page < 100; page++ {
		var resp struct {
			Events []struct {
				Seq  uint64
				Data struct{ Line string }
			}
		}
		url := sc.URL(fmt.Sprintf("/api/v1/streams/%s/events?after=%d&limit=500", id, after))
		if code := do(t, http.MethodGet, url, "", &resp); code != http.StatusOK {
			t.Fatalf("GET %s: %d", url, code)
		}
		if len(resp.Events) == 0 {
			return lines
		}
		for _, e := range resp.Events {
			if e.Seq <= after {
				t.Fatalf("seq %d after %d: out of order", e.Seq, after)
			}
			after = e.Seq
			lines = append(lines, e.Data.Line)
		}
	}
	t.Fatal("history has more than 100 pages")
	return nil
}
