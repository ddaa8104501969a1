package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// pollReadyz asks /readyz every few milliseconds until it answers want
// (bounded by limit) and returns that answer. The interval is short because
// a killed plugin is back within a few hundred milliseconds.
func pollReadyz(t *testing.T, sc *sidecar, want int, limit time.Duration) answer {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		a := send(t, http.MethodGet, sc.URL("/readyz"), "", nil)
		if a.status == want {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %s; last %d %s", want, limit, a.status, a.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A node whose plugin serving a stored emitter (the fibonacci plugin
// behind the shared "fib" emitter) dies is not ready until the plugin is
// back: an orchestrator takes it out and puts it back by itself.
func TestReadyzFollowsRequiredPlugin(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)

	pids := pluginPIDs(t, "fibonacci", sc.cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("want one fibonacci plugin process, found %v", pids)
	}
	killProcess(t, pids[0])
	down := pollReadyz(t, sc, http.StatusServiceUnavailable, 30*time.Second)
	if code := down.errorCode(); code != "unavailable" || !strings.Contains(string(down.body), "fibonacci") {
		t.Fatalf("/readyz while the plugin is down: %d %s, want code unavailable naming fibonacci", down.status, down.body)
	}
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)
	if got := pluginPIDs(t, "fibonacci", sc.cmd.Process.Pid); len(got) != 1 || got[0] == pids[0] {
		t.Fatalf("ready again without a new fibonacci process: %v (killed %d)", got, pids[0])
	}
}

// A node whose store cannot apply its journal (here a damaged file: the
// fib stream's history is a plain key where a bucket belongs) answers 503
// unavailable on /readyz once an acknowledged write cannot be applied, and
// is ready again after the file is repaired and the journal replayed.
func TestReadyzFollowsStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)
	if code := do(t, http.MethodPost, sc.URL("/fib/next"), "", nil); code != http.StatusOK {
		t.Fatalf("POST /fib/next: %d", code)
	}
	if code := sc.Stop(t); code != 0 {
		t.Fatalf("clean stop exited %d", code)
	}
	setFibHistory(t, dir, true)

	sc = startSidecar(t, dir)
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)
	// Acknowledged from the journal; the B-tree then refuses it.
	do(t, http.MethodPost, sc.URL("/fib/next"), "", nil)
	down := pollReadyz(t, sc, http.StatusServiceUnavailable, 30*time.Second)
	if code := down.errorCode(); code != "unavailable" {
		t.Fatalf("/readyz with a failing store: %d %s, want code unavailable", down.status, down.body)
	}
	sc.Stop(t) // exits non-zero: the store could not apply what it acknowledged

	setFibHistory(t, dir, false)
	sc = startSidecar(t, dir)
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)
}

// setFibHistory damages (or repairs) the state file of a stopped sidecar:
// damaged, the fib stream's history bucket is replaced by a plain key, so
// applying an append to it fails; repaired, the key is gone again.
func setFibHistory(t *testing.T, dir string, damage bool) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "sidestream.db"), 0o600, &bbolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		history := tx.Bucket([]byte("history")) // core/bolt's bucket of per-stream history
		if history == nil {
			t.Fatal("state file has no history bucket")
		}
		if !damage {
			return history.Delete([]byte("fib"))
		}
		if history.Bucket([]byte("fib")) == nil {
			t.Fatal("state file has no history of the fib stream")
		}
		if err := history.DeleteBucket([]byte("fib")); err != nil {
			return err
		}
		return history.Put([]byte("fib"), []byte("damaged"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A node whose writes fail for a full disk is not ready (503
// unavailable) while the disk stays full, and is ready again once space
// is freed, before any write succeeds: readiness must not wait for
// traffic an orchestrator no longer sends. Writes then succeed.
func TestReadyzFollowsFullDisk(t *testing.T) {
	t.Parallel()
	data := requireTmpfs(t, "16m")
	sc := startSidecar(t, data)
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)
	filler := fillDisk(t, data)
	refused := false
	for i := 0; i < 200 && !refused; i++ {
		a := send(t, http.MethodPost, sc.URL("/track/full"), fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", 8000)), nil)
		refused = a.status == http.StatusServiceUnavailable
	}
	if !refused {
		t.Fatal("no write was refused on a full disk")
	}
	down := pollReadyz(t, sc, http.StatusServiceUnavailable, 30*time.Second)
	if code := down.errorCode(); code != "unavailable" {
		t.Fatalf("/readyz on a full disk: %d %s, want code unavailable", down.status, down.body)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	pollReadyz(t, sc, http.StatusOK, 60*time.Second)
	if a := send(t, http.MethodPost, sc.URL("/track/full"), `"after"`, nil); a.status != http.StatusAccepted {
		t.Fatalf("write after space was freed: %d %s", a.status, a.body)
	}
}
