package e2e

// The queue commands do what their flags say, on the real binary:
// produce --count N posts N, consume --count N prints N and gives back
// what else it claimed, --print shows bodies and --ids ids, and Ctrl-C
// is a normal end.

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// qStats is the part of GET /v2/queues/{q}/stats the tests read.
type qStats struct {
	Messages struct {
		Claimed int `json:"claimed"`
		Free    int `json:"free"`
		Total   int `json:"total"`
	} `json:"messages"`
}

func queueStats(t *testing.T, sc *sidecar, q string) qStats {
	t.Helper()
	var st qStats
	if code, err := qdo(t, "GET", sc.URL("/v2/queues/"+q+"/stats"), "", &st); err != nil || code != 200 {
		t.Fatalf("stats of %s: %d %v", q, code, err)
	}
	return st
}

// queueCLI runs `sidestream queue … --queue q` against sc to its end.
func queueCLI(t *testing.T, sc *sidecar, q string, args ...string) (string, string) {
	t.Helper()
	full := append([]string{"queue", "--server", sc.URL(""), "--project", qProject, "--queue", q}, args...)
	stdout, stderr, err := cli(t, cliEnv(), full...)
	if err != nil {
		t.Fatalf("sidestream %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func lines(s string) []string {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestQueueCLICounts: produce --count 1 posts one message (not a batch
// of 10); consume --count 3 with claims of 10 prints exactly 3 bodies
// and releases the 5 others it claimed, so a second consumer gets them
// at once (its claim ttl is 300 s, so waiting for it would time out
// the command); consume --ack=false gives its claims back.
func TestQueueCLICounts(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	const q = "counts"
	queueCLI(t, sc, q, "produce", "--count", "1")
	if st := queueStats(t, sc, q); st.Messages.Total != 1 {
		t.Fatalf("after produce --count 1: %d messages, want 1", st.Messages.Total)
	}
	queueCLI(t, sc, q, "produce", "--count", "7", "--batch", "5", "--body", `{"k":[1,2]}`)
	if st := queueStats(t, sc, q); st.Messages.Total != 8 {
		t.Fatalf("after produce --count 7 --batch 5: %d messages, want 8", st.Messages.Total)
	}

	out, _ := queueCLI(t, sc, q, "consume", "--count", "3", "--batch", "10", "--claim-ttl", "300s", "--print")
	got := lines(out)
	if len(got) != 3 || got[0] != `{"seq":0}` || got[1] != `{"k":[1,2]}` {
		t.Fatalf("consume --count 3 --print printed %q; want 3 bodies, the first {\"seq\":0} then {\"k\":[1,2]}", got)
	}
	if st := queueStats(t, sc, q); st.Messages.Total != 5 || st.Messages.Claimed != 0 {
		t.Fatalf("after consume --count 3: %+v; want 5 messages left, none claimed", st.Messages)
	}

	// Without acks the messages stay, and the claims are given back.
	out, _ = queueCLI(t, sc, q, "consume", "--count", "2", "--claim-ttl", "300s", "--ack=false", "--ids")
	if ids := lines(out); len(ids) != 2 || strings.Contains(out, "{") {
		t.Fatalf("consume --count 2 --ids printed %q; want 2 ids", out)
	}
	if st := queueStats(t, sc, q); st.Messages.Total != 5 || st.Messages.Claimed != 0 {
		t.Fatalf("after consume --ack=false: %+v; want 5 messages, none claimed", st.Messages)
	}

	// A consumer bounded to less than the claim ttl gets all 5 now.
	out, _ = queueCLI(t, sc, q, "consume", "--count", "5", "--claim-ttl", "300s", "--ids", "--duration", "60s")
	if ids := lines(out); len(ids) != 5 {
		t.Fatalf("second consumer printed %q; want the 5 messages left", out)
	}
	if st := queueStats(t, sc, q); st.Messages.Total != 0 {
		t.Fatalf("after consuming everything: %+v", st.Messages)
	}
}

// TestQueueCLIInterrupt: Ctrl-C ends a consumer with exit status 0, as it
// ends tail, after deleting what it printed; and a producer, with its
// summary.
func TestQueueCLIInterrupt(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	const q = "interrupt"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "queue", "--server", sc.URL(""), "--project", qProject, "--queue", q,
		"consume", "--print", "--claim-ttl", "300s")
	cmd.Env = cliEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	first := startFirstLine(t, cmd)
	// The consumer subscribes asynchronously: post until it prints one.
	var line string
	for i := 0; line == "" && i < 60; i++ {
		queueCLI(t, sc, q, "produce", "--count", "1", "--body", fmt.Sprintf(`{"n":%d}`, i))
		select {
		case line = <-first:
		case <-time.After(time.Second):
		}
	}
	var body map[string]int
	if json.Unmarshal([]byte(line), &body) != nil {
		t.Fatalf("consume --print printed %q; want a message body (stderr %s)", line, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume after Ctrl-C: %v; want exit status 0\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "consumed") {
		t.Errorf("no summary on stderr: %s", stderr.String())
	}
	if st := queueStats(t, sc, q); st.Messages.Claimed != 0 {
		t.Fatalf("after Ctrl-C: %+v; want no claim left", st.Messages)
	}

	prod := exec.CommandContext(ctx, binary, "queue", "--server", sc.URL(""), "--project", qProject, "--queue", q+"-p",
		"produce", "--count", "100000", "--batch", "1", "--rate", "20")
	prod.Env = cliEnv()
	var pout strings.Builder
	prod.Stdout, prod.Stderr = &pout, &pout
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	// Once a message is stored the producer runs (its handler is set).
	eventually(t, "the producer posting", 30*time.Second, func() bool { return queueStats(t, sc, q+"-p").Messages.Total > 0 })
	if err := prod.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := prod.Wait(); err != nil || !strings.Contains(pout.String(), "produced ") {
		t.Fatalf("produce after Ctrl-C: %v; want exit status 0 and the summary\n%s", err, pout.String())
	}
}
