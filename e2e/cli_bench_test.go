package e2e

// bench does what its flags say, on the real binary: fib runs on an
// emitter of its own, --warmup 0s means no warm-up, --max-ops bounds the
// measured window (never emptied by the warm-up), and a run that misses a
// target exits non-zero.

import (
	"strings"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

// TestBenchFibOwnEmitterAndWindow runs bench fib twice against a node
// whose shared /fib counter stands at 3: the counter does not move, the
// benchmark's emitter is gone afterwards, and the window holds exactly
// --max-ops requests, with no warm-up (every next is in the window) and
// with one (the warm-up's requests come on top).
func TestBenchFibOwnEmitterAndWindow(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir())
	for range 3 {
		if code := do(t, "POST", s.URL("/fib/next"), "", nil); code != 200 {
			t.Fatalf("/fib/next: %d", code)
		}
	}
	cases := []struct {
		name   string
		warmup string
	}{
		{"no warm-up", "0s"},
		{"warm-up", "300ms"},
	}
	for _, tc := range cases {
		rep, stderr, err := runBench(t, s, "fib", "--concurrency", "2", "--max-ops", "150", "--duration", "60s", "--warmup", tc.warmup)
		if err != nil || !rep.Completed {
			t.Fatalf("%s: bench fib: %v (report error %q)\nstderr:\n%s", tc.name, err, rep.Error, stderr)
		}
		acked := int64(rep.Metrics["acknowledged"])
		if rep.Ops != 150 {
			t.Errorf("%s: the window holds %d requests, want --max-ops 150", tc.name, rep.Ops)
		}
		if tc.warmup == "0s" && acked != rep.Ops {
			t.Errorf("%s: %d requests in all, %d in the window; want them all in it", tc.name, acked, rep.Ops)
		}
		if int64(rep.Metrics["position_after"]) != acked {
			t.Errorf("%s: the benchmark's emitter is at %v after %d nexts", tc.name, rep.Metrics["position_after"], acked)
		}
		if id, _ := rep.Params["emitter"].(string); id == "" || id == "fib" {
			t.Errorf("%s: bench ran on emitter %q, want one of its own", tc.name, id)
		} else if code := do(t, "GET", s.URL("/api/v1/emitters/"+id), "", nil); code != 404 {
			t.Errorf("%s: the benchmark's emitter %s is still there after the run (%d)", tc.name, id, code)
		}
	}
	var fib api.FibState
	if code := do(t, "GET", s.URL("/fib/current"), "", &fib); code != 200 || fib.Position != 3 {
		t.Fatalf("shared /fib after the benchmarks: %d %+v, want position 3", code, fib)
	}
}

// TestBenchMissedTargetExitsNonZero: a completed run that misses a
// target (one request in the window is far below 25,000 next/s) prints
// its report and exits with status 3, naming the target on stderr.
func TestBenchMissedTargetExitsNonZero(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir())
	stdout, stderr, err := cli(t, cliEnv(), "bench", "fib", "--server", s.URL(""), "--concurrency", "1",
		"--max-ops", "1", "--duration", "60s", "--warmup", "0s", "--quiet")
	if !missedTargetsOnly(err) {
		t.Fatalf("bench fib with a missed target: %v, want exit status 3\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "FAIL") || !strings.Contains(stderr, "targets FAILED: next/s") {
		t.Fatalf("want the report with FAIL on stdout and the target named on stderr\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}
