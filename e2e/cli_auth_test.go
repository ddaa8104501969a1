package e2e

// Every client subcommand against a node with auth on: the same --server
// and --token flags (or SIDESTREAM_SERVER and SIDESTREAM_TOKEN) get
// plugins list, tail over SSE and WS, queue produce/consume and bench
// through; without a token each fails with advice and a non-zero exit.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// cliEnv is the environment without any SIDESTREAM_* variable, plus more.
func cliEnv(more ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIDESTREAM_") {
			env = append(env, kv)
		}
	}
	return append(env, more...)
}

// cli runs the binary to its end (bounded) and returns stdout and stderr.
func cli(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// tailFirst runs tail until it prints one event (returned) or exits
// (its stderr and exit error returned), within 30 s.
func tailFirst(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"tail"}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	first := startFirstLine(t, cmd)
	var line string
	select {
	case line = <-first:
	case <-time.After(30 * time.Second):
		t.Errorf("tail %v printed nothing and did not exit within 30s", args)
	}
	if line != "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return line, stderr.String(), nil
	}
	err := cmd.Wait() // stdout closed: the process ended
	return "", stderr.String(), err
}

func TestCLIClientsWithAuth(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir(), "--auth-token-file", writeTokenFile(t))
	server := "http://" + s.addr
	ways := []struct {
		name  string
		env   []string
		flags []string
	}{
		{"flags", cliEnv(), []string{"--server", server, "--token", tokAlpha}},
		{"environment", cliEnv("SIDESTREAM_SERVER="+server, "SIDESTREAM_TOKEN="+tokAlpha), nil},
	}
	for _, w := range ways {
		run := func(args ...string) string {
			t.Helper()
			stdout, stderr, err := cli(t, w.env, append(args, w.flags...)...)
			if err != nil && !(args[0] == "bench" && missedTargetsOnly(err)) {
				t.Fatalf("%s: %v: %v\nstdout:\n%s\nstderr:\n%s", w.name, args, err, stdout, stderr)
			}
			return stdout
		}
		if out := run("plugins", "list"); !strings.Contains(out, "magic") || !strings.Contains(out, "running") {
			t.Errorf("%s: plugins list:\n%s", w.name, out)
		}
		for _, tr := range []string{"sse", "ws"} {
			line, stderr, err := tailFirst(t, w.env, append([]string{"magic", "--after", "0", "--transport", tr, "--output", "json"}, w.flags...)...)
			var ev struct {
				Stream string `json:"stream"`
				Seq    uint64 `json:"seq"`
			}
			if err != nil || json.Unmarshal([]byte(line), &ev) != nil || ev.Stream != "magic" || ev.Seq == 0 {
				t.Errorf("%s: tail over %s: line %q, err %v, stderr:\n%s", w.name, tr, line, err, stderr)
			}
		}
		queue := "cli-auth-" + w.name
		if out := run("queue", "produce", "--queue", queue, "--count", "20", "--batch", "5"); !strings.Contains(out, "produced 20 messages") {
			t.Errorf("%s: queue produce: %s", w.name, out)
		}
		out := run("queue", "consume", "--queue", queue, "--count", "20", "--ids", "--duration", "30s")
		if n := len(strings.Fields(out)); n != 20 {
			t.Errorf("%s: queue consume printed %d message ids, want 20:\n%s", w.name, n, out)
		}
		// Requests count into ops in batches, so a short window may show 0
		// ops; the latency histogram holds every measured request.
		var rep struct {
			Completed bool  `json:"completed"`
			Errors    int64 `json:"errors"`
			Latencies []struct {
				Count int64 `json:"count"`
			} `json:"latencies"`
		}
		out = run("bench", "fib", "--duration", "500ms", "--warmup", "100ms", "--concurrency", "2", "--quiet", "--format", "json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Completed || rep.Errors != 0 ||
			len(rep.Latencies) == 0 || rep.Latencies[0].Count == 0 {
			t.Errorf("%s: bench fib: %v\n%s", w.name, err, out)
		}
	}
}

// Without a token, or with a wrong one, every client command exits
// non-zero and says what to do.
func TestCLIClientsWithoutToken(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir(), "--auth-token-file", writeTokenFile(t))
	commands := [][]string{
		{"plugins", "list"},
		{"tail", "magic", "--after", "0"},
		{"tail", "magic", "--after", "0", "--transport", "ws"},
		{"queue", "produce", "--count", "1"},
		{"queue", "consume", "--count", "1", "--duration", "10s"},
		{"bench", "fib", "--duration", "200ms", "--quiet"},
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no token", cliEnv("SIDESTREAM_SERVER=http://" + s.addr), "requires a bearer token: pass --token or set SIDESTREAM_TOKEN"},
		{"wrong token", cliEnv("SIDESTREAM_SERVER=http://"+s.addr, "SIDESTREAM_TOKEN="+tokWrong), "refused the token"},
	} {
		for _, args := range commands {
			_, stderr, err := cli(t, tc.env, args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("%s: %v: exit %v, want a non-zero exit", tc.name, args, err)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("%s: %v: stderr lacks %q:\n%s", tc.name, args, tc.want, stderr)
			}
		}
	}
}
