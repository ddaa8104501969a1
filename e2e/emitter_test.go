package e2e

import (
	"fmt"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"
)

// A log plugin killed with SIGKILL is restarted; the SSE subscriber keeps
// its connection and sees seqs (and the generator's line numbers) continue
// with no gap and no duplicate.
func TestLogPluginKilledResumesWithoutGap(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	var created struct{ ID string }
	if code := do(t, http.MethodPut, sc.URL("/log"), `{"source":"synthetic","rate":200}`, &created); code != http.StatusCreated || created.ID == "" {
		t.Fatalf("PUT /log: %d %+v", code, created)
	}
	sse := openSSE(t, sc.URL("/sse/log/"+created.ID+"?event_types=1"), "")

	var lastSeq, lastLine uint64
	read := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			ev, err := sse.Next()
			if err != nil {
				t.Fatalf("after seq %d: %v", lastSeq, err)
			}
			if ev.Event != "log" {
				t.Fatalf("event %d has type %q (data %s), want log", ev.ID, ev.Event, ev.Data)
			}
			var line struct{ Line uint64 }
			ev.decode(t, &line)
			if lastSeq != 0 && (ev.ID != lastSeq+1 || line.Line != lastLine+1) {
				t.Fatalf("after seq %d line %d got seq %d line %d: gap or duplicate", lastSeq, lastLine, ev.ID, line.Line)
			}
			lastSeq, lastLine = ev.ID, line.Line
		}
	}
	read(50)

	pids := pluginPIDs(t, "log", sc.cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("want one log plugin process, found %v", pids)
	}
	killProcess(t, pids[0])
	// 200 lines/s: 600 more events span the kill, the restart and beyond.
	read(600)
	eventually(t, "a new log plugin process", 30*time.Second, func() bool {
		now := pluginPIDs(t, "log", sc.cmd.Process.Pid)
		return len(now) == 1 && now[0] != pids[0]
	})
}

// Every acknowledged fibonacci next survives kill -9 of the sidecar, and
// the killed sidecar leaves no plugin process behind.
func TestFibonacciSurvivesSidecarKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	const n = 40
	for i := 1; i <= n; i++ {
		var r struct {
			Position int
			Value    string
		}
		method := http.MethodPost
		if i%2 == 0 {
			method = http.MethodGet // pexservice clients used GET
		}
		if code := do(t, method, sc.URL("/fib/next"), "", &r); code != http.StatusOK || r.Position != i || r.Value != fib(i) {
			t.Fatalf("next #%d: %d %+v, want position %d value %s", i, code, r, i, fib(i))
		}
	}
	var children []int
	for _, name := range []string{"fibonacci", "log", "magic", "time"} {
		children = append(children, pluginPIDs(t, name, sc.cmd.Process.Pid)...)
	}
	if len(children) == 0 {
		t.Fatal("found no plugin processes of the sidecar")
	}
	sc.Kill()
	eventually(t, fmt.Sprintf("plugin processes %v to die with their sidecar", children), 30*time.Second, func() bool {
		for _, pid := range children {
			if !isZombie(pid) && processExists(pid) {
				return false
			}
		}
		return true
	})

	sc2 := startSidecar(t, dir)
	var r struct {
		Position int
		Value    string
	}
	if code := do(t, http.MethodGet, sc2.URL("/fib/current"), "", &r); code != http.StatusOK || r.Position != n || r.Value != fib(n) {
		t.Fatalf("after restart current = %d %+v, want position %d value %s", code, r, n, fib(n))
	}
}

func processExists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

func fib(n int) string {
	a, b := big.NewInt(0), big.NewInt(1)
	for i := 0; i < n; i++ {
		a.Add(a, b)
		a, b = b, a
	}
	return a.String()
}

// SIGTERM drains and exits 0; a second start finds the emitters again.
func TestSigtermExitsCleanlyAndRestores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	var created struct{ ID string }
	if code := do(t, http.MethodPut, sc.URL("/log"), "", &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	if code := sc.Stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; logs:\n%s", code, sc.Logs())
	}
	sc2 := startSidecar(t, dir)
	var page struct {
		Events []struct{ Seq uint64 } `json:"events"`
	}
	eventually(t, "the restored log emitter to have events", 30*time.Second, func() bool {
		return do(t, http.MethodGet, sc2.URL("/log/"+created.ID+"?limit=5"), "", &page) == http.StatusOK && len(page.Events) > 0
	})
}
