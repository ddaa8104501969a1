package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchReport is the part of `sidestream bench --format json` the smoke
// test reads.
type benchReport struct {
	Scenario  string         `json:"scenario"`
	Targets   []string       `json:"targets"`
	Completed bool           `json:"completed"`
	Error     string         `json:"error"`
	Ops       int64          `json:"ops"`
	OpsUnit   string         `json:"ops_unit"`
	Errors    int64          `json:"errors"`
	Lost      int64          `json:"lost"`
	Dups      int64          `json:"duplicates"`
	Params    map[string]any `json:"params"`
	Latencies []struct {
		Name    string  `json:"name"`
		Count   int64   `json:"count"`
		P50     float64 `json:"p50_ms"`
		P99     float64 `json:"p99_ms"`
		Max     float64 `json:"max_ms"`
		Buckets []struct {
			Count int64 `json:"count"`
		} `json:"buckets"`
	} `json:"latencies"`
	Server *struct {
		PID     int   `json:"pid"`
		RSSPeak int64 `json:"rss_peak_bytes"`
	} `json:"server"`
	Metrics  map[string]float64      `json:"metrics"`
	Checks   []struct{ Name string } `json:"checks"`
	Timeline []struct{ T float64 }   `json:"timeline"`
}

// runBench runs the bench command against s and decodes its JSON report.
func runBench(t *testing.T, s *sidecar, args ...string) (benchReport, []byte, error) {
	t.Helper()
	return runBenchAt(t, []string{s.URL("")}, args...)
}

// runBenchAt runs the bench command against targets (publishers on the
// first) and decodes its JSON report.
func runBenchAt(t *testing.T, targets []string, args ...string) (benchReport, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"bench"}, args...)
	full = append(full, "--server", targets[0], "--format", "json")
	if !slices.Contains(args, "--warmup") {
		full = append(full, "--warmup", "200ms")
	}
	if len(targets) > 1 {
		full = append(full, "--sub-server", strings.Join(targets[1:], ","))
	}
	cmd := exec.CommandContext(ctx, binary, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if missedTargetsOnly(err) {
		err = nil // speed is not asserted here; the tests read the report
	}
	var rep benchReport
	if stdout.Len() > 0 {
		if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
			t.Fatalf("bench %v: stdout is not a JSON report: %v\n%s\nstderr:\n%s", args, jerr, stdout.Bytes(), stderr.Bytes())
		}
	}
	return rep, stderr.Bytes(), err
}

// missedTargetsOnly reports whether err is bench's exit status 3: the
// run completed and the report lists a FAILed target.
func missedTargetsOnly(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == 3
}

// TestBenchScenarios runs every scenario with tiny parameters against the
// real server: each must complete and produce a well-formed report whose
// counts agree with each other. Speed is never asserted.
func TestBenchScenarios(t *testing.T) {
	s := startSidecar(t, t.TempDir())
	pid := s.cmd.Process.Pid
	cases := []struct {
		scenario string
		args     []string
		unit     string
		hists    []string // latency histograms that must have values
	}{
		{"fanout", []string{"--subscribers", "4", "--rate", "200", "--duration", "1s"}, "deliveries", []string{"delivery"}},
		{"fanout", []string{"--subscribers", "3", "--rate", "200", "--duration", "1s", "--transport", "ws"}, "deliveries", []string{"delivery"}},
		{"fanout", []string{"--subscribers", "6", "--streams", "3", "--rate", "100", "--duration", "1s"}, "deliveries", []string{"delivery"}},
		{"fanout", []string{"--subscribers", "4", "--streams", "2", "--publish", "http", "--rate", "100", "--duration", "1s"}, "deliveries", []string{"delivery", "publish"}},
		{"fanout", []string{"--subscribers", "2", "--publish", "http", "--rate", "100", "--duration", "1s", "--transport", "ws"}, "deliveries", []string{"delivery", "publish"}},
		{"sse-users", []string{"--users", "5", "--events", "50", "--rate", "500"}, "deliveries", []string{"delivery", "user"}},
		{"track", []string{"--concurrency", "3", "--users", "2", "--duration", "1s", "--max-ops", "3000"}, "publishes", []string{"request", "delivery"}},
		{"fib", []string{"--concurrency", "2", "--duration", "1s", "--max-ops", "2000"}, "requests", []string{"request"}},
		{"idle", []string{"--conns", "20", "--duration", "1s", "--transport", "both"}, "connections", nil},
		{"queue", []string{"--producers", "1", "--consumers", "2", "--size", "64", "--duration", "1s", "--max-ops", "200000"}, "messages", []string{"post", "delivery"}},
		{"queue", []string{"--producers", "2", "--consumers", "1", "--batch", "7", "--ack-max", "20", "--duration", "1s", "--max-ops", "100000"}, "messages", []string{"post", "delivery"}},
	}
	for _, tc := range cases {
		t.Run(tc.scenario+"/"+strings.Join(tc.args, " "), func(t *testing.T) {
			rep, stderr, err := runBench(t, s, append([]string{tc.scenario}, tc.args...)...)
			if err != nil {
				t.Fatalf("bench %s: %v\nreport error: %s\nstderr:\n%s", tc.scenario, err, rep.Error, stderr)
			}
			if rep.Scenario != tc.scenario || !rep.Completed || rep.OpsUnit != tc.unit {
				t.Fatalf("report header = %q completed=%v unit=%q (error %q)", rep.Scenario, rep.Completed, rep.OpsUnit, rep.Error)
			}
			if rep.Ops <= 0 || rep.Errors != 0 || rep.Lost != 0 || rep.Dups != 0 {
				t.Errorf("ops=%d errors=%d lost=%d duplicates=%d; want ops > 0 and no errors, losses, duplicates",
					rep.Ops, rep.Errors, rep.Lost, rep.Dups)
			}
			if rep.Server == nil || rep.Server.PID != pid || rep.Server.RSSPeak <= 0 {
				t.Errorf("server stats = %+v, want the sidecar's pid %d found by its port, with RSS", rep.Server, pid)
			}
			if len(rep.Checks) == 0 || len(rep.Params) == 0 {
				t.Errorf("report without checks (%d) or params (%d)", len(rep.Checks), len(rep.Params))
			}
			for flag, param := range map[string]string{"--batch": "batch", "--ack-max": "ack_max", "--streams": "streams", "--publish": "publish"} {
				if i := slices.Index(tc.args, flag); i >= 0 && fmt.Sprint(rep.Params[param]) != tc.args[i+1] {
					t.Errorf("params %s = %v, want %s", param, rep.Params[param], tc.args[i+1])
				}
			}
			checkHistograms(t, rep, tc.hists)
		})
	}
}

func checkHistograms(t *testing.T, rep benchReport, want []string) {
	t.Helper()
	byName := map[string]int{}
	for i, l := range rep.Latencies {
		byName[l.Name] = i
	}
	for _, name := range want {
		i, ok := byName[name]
		if !ok {
			t.Errorf("no %q latency histogram in %+v", name, rep.Latencies)
			continue
		}
		l := rep.Latencies[i]
		var sum int64
		for _, b := range l.Buckets {
			sum += b.Count
		}
		if l.Count == 0 || sum != l.Count || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("histogram %q: count %d, buckets sum %d, p50 %v p99 %v max %v: inconsistent", name, l.Count, sum, l.P50, l.P99, l.Max)
		}
	}
}

// TestBenchReportsAndErrors covers the text and HTML outputs and the
// errors a user sees for bad input.
func TestBenchReportsAndErrors(t *testing.T) {
	s := startSidecar(t, t.TempDir())
	dir := t.TempDir()
	html, js := filepath.Join(dir, "r.html"), filepath.Join(dir, "r.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "bench", "fanout", "--server", s.URL(""), "--subscribers", "2",
		"--rate", "100", "--duration", "1s", "--warmup", "100ms", "--quiet", "--buckets", "[0,1ms,10ms]",
		"--html-out", html, "--json-out", js).CombinedOutput()
	if err != nil && !missedTargetsOnly(err) {
		t.Fatalf("bench fanout: %v\n%s", err, out)
	}
	for _, want := range []string{"Bucket", "[0s,", "[10ms,", "+Inf]", "deliveries", "targets"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<svg")) || bytes.Contains(page, []byte("<script")) || bytes.Contains(page, []byte("src=")) {
		t.Errorf("HTML report must be self-contained inline SVG:\n%.400s", page)
	}
	var rep benchReport
	if b, err := os.ReadFile(js); err != nil || json.Unmarshal(b, &rep) != nil || rep.Scenario != "fanout" {
		t.Errorf("--json-out file: %v, scenario %q", err, rep.Scenario)
	}

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, "unknown scenario"},
		{[]string{"fanout", "--transport", "carrier-pigeon"}, "transport"},
		{[]string{"fanout", "--buckets", "[5ms,1ms]"}, "buckets must increase"},
		{[]string{"queue", "--batch", "101"}, "1 to 100 messages"},
	}
	for _, b := range bad {
		args := append([]string{"bench", "--server", s.URL(""), "--quiet"}, b.args...)
		out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), b.want) {
			t.Errorf("bench %v: err %v, output %q; want a failure mentioning %q", b.args, err, out, b.want)
		}
	}
}

// TestBenchCluster runs fanout against a three-node cluster: the emitter
// on node 1, subscribers on every node (node 1 named again). Nothing is
// lost, and the report keeps the latencies of subscribers on the emitter's
// node apart from those served through another node, with their
// difference. Speed is never asserted.
func TestBenchCluster(t *testing.T) {
	c := startEmbeddedCluster(t, 3)
	n1 := c.nodes[0].URL("")
	targets := []string{n1, n1, c.nodes[1].URL(""), c.nodes[2].URL("")}
	for _, tr := range []string{"sse", "ws"} {
		t.Run(tr, func(t *testing.T) {
			rep, stderr, err := runBenchAt(t, targets, "fanout", "--subscribers", "6", "--rate", "100", "--duration", "1s", "--transport", tr)
			if err != nil {
				t.Fatalf("bench fanout: %v\nreport error: %s\nstderr:\n%s", err, rep.Error, stderr)
			}
			if !rep.Completed || rep.Ops <= 0 || rep.Errors != 0 || rep.Lost != 0 || rep.Dups != 0 {
				t.Fatalf("completed=%v ops=%d errors=%d lost=%d duplicates=%d (error %q)", rep.Completed, rep.Ops, rep.Errors, rep.Lost, rep.Dups, rep.Error)
			}
			if !slices.Equal(rep.Targets, targets[1:]) {
				t.Errorf("report targets = %v, want the subscribers' %v", rep.Targets, targets[1:])
			}
			checkHistograms(t, rep, []string{"delivery", "delivery-same-node", "delivery-cross-node"})
			counts := map[string]int64{}
			for _, l := range rep.Latencies {
				counts[l.Name] = l.Count
			}
			// Two subscribers of six are on node 1, four on nodes 2 and 3.
			if counts["delivery-same-node"]+counts["delivery-cross-node"] != counts["delivery"] || counts["delivery-cross-node"] <= counts["delivery-same-node"] {
				t.Errorf("histogram counts %v: same + cross must be all, cross (4 subscribers) more than same (2)", counts)
			}
			for _, m := range []string{"cross_node_added_p50_ms", "cross_node_added_p99_ms"} {
				if _, ok := rep.Metrics[m]; !ok {
					t.Errorf("no metric %s in %v", m, rep.Metrics)
				}
			}
		})
	}
}
