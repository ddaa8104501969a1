package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the sidestream executable built once for every e2e test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sidestream-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sidestream")
	build := exec.Command("go", "build", "-o", binary, "../sidecar/cmd/sidestream")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sidestream:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sidecar is one running sidestream process.
type sidecar struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	dataDir string
	args    []string

	mu    sync.Mutex
	logs  []string
	done  chan struct{}
	ready chan string
}

// startSidecar runs the binary with serve on a random loopback port and
// waits until it logs its address.
func startSidecar(t *testing.T, dataDir string, extra ...string) *sidecar {
	t.Helper()
	return startSidecarVia(t, nil, dataDir, extra...)
}

// startSidecarVia is startSidecar with the binary run through the command
// via (e.g. a shell that lowers a limit, then execs it).
func startSidecarVia(t *testing.T, via []string, dataDir string, extra ...string) *sidecar {
	t.Helper()
	s := launchVia(t, via, dataDir, extra...)
	select {
	case s.addr = <-s.ready:
	case <-s.done:
		t.Fatalf("sidestream exited before serving; logs:\n%s", s.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("sidestream did not start within 60s; logs:\n%s", s.Logs())
	}
	return s
}

// launch starts the process without waiting for it to serve.
func launch(t *testing.T, dataDir string, extra ...string) *sidecar {
	t.Helper()
	return launchVia(t, nil, dataDir, extra...)
}

// launchVia is launch through a command that execs the binary (e.g.
// `sh -c 'ulimit -n 256; exec "$@"'` or `ip netns exec NS`), so the
// process is still the sidecar itself.
func launchVia(t *testing.T, via []string, dataDir string, extra ...string) *sidecar {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "debug"}, extra...)
	argv := append(append(append([]string{}, via...), binary), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SIDESTREAM_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &sidecar{t: t, cmd: cmd, dataDir: dataDir, args: args, done: make(chan struct{}), ready: make(chan string, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readLogs(stderr)
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("sidestream logs:\n%s", s.Logs())
		}
	})
	return s
}

func (s *sidecar) readLogs(r io.Reader) {
	defer close(s.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.logs = append(s.logs, line)
		s.mu.Unlock()
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sidestream serving" {
			s.ready <- rec.Addr
		}
	}
	_ = s.cmd.Wait()
}

// Logs returns everything the process wrote to stderr so far.
func (s *sidecar) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// URL returns the address of path on this sidecar.
func (s *sidecar) URL(path string) string { return "http://" + s.addr + path }

// Kill sends SIGKILL and waits for the process to be reaped.
func (s *sidecar) Kill() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-s.done
}

// Stop sends SIGTERM and returns the exit code.
func (s *sidecar) Stop(t *testing.T) int {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("sidestream did not exit within 60s of SIGTERM; logs:\n%s", s.Logs())
	}
	return s.cmd.ProcessState.ExitCode()
}

// Wait waits for the process to exit on its own and returns its code.
func (s *sidecar) Wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("sidestream did not exit within 60s; logs:\n%s", s.Logs())
	}
	return s.cmd.ProcessState.ExitCode()
}

// do sends a request and decodes a JSON answer into out (if not nil).
func do(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	a := send(t, method, url, body, nil)
	if out != nil && len(a.body) > 0 {
		a.decode(t, out)
	}
	return a.status
}

// noRedirect shows redirects as they are (GET / answers 302).
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// answer is a whole HTTP response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into out, failing the test on bad JSON.
func (a answer) decode(t *testing.T, out any) {
	t.Helper()
	if err := json.Unmarshal(a.body, out); err != nil {
		t.Fatalf("status %d body %q: %v", a.status, a.body, err)
	}
}

// errorCode is the code of an {"error":{"code"}} body ("" if none).
func (a answer) errorCode() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

// send sends one request with headers h and reads the whole answer.
func send(t *testing.T, method, url, body string, h map[string]string) answer {
	t.Helper()
	return sendWith(t, noRedirect, method, url, body, h)
}

// sendWith is send through client.
func sendWith(t *testing.T, client *http.Client, method, url, body string, h map[string]string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, raw}
}

// killProcess kills pid at once (SIGKILL on Unix): a crash, not a stop.
func killProcess(t *testing.T, pid int) {
	t.Helper()
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

// pluginPIDs returns the pids of the plugin processes serving name that are
// children of parent (0: any parent), found in /proc.
func pluginPIDs(t *testing.T, name string, parent int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) != 3 || args[0] != binary || args[1] != "internal-plugin" || args[2] != name {
			continue
		}
		if parent != 0 && ppid(pid) != parent {
			continue
		}
		if !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func ppid(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name may hold spaces: fields start after the last ')'.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 2 {
		return -1
	}
	p, _ := strconv.Atoi(fields[1])
	return p
}

func isZombie(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	return len(fields) == 0 || fields[0] == "Z" || fields[0] == "X"
}

// eventually polls cond every 50ms until it holds or the hang guard expires.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (%s): %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startFirstLine starts cmd and returns a channel with the first line it
// prints (closed without one if its output ends first); the rest of its
// output is read and dropped, so it never blocks on a full pipe.
func startFirstLine(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
		}
	}()
	return first
}
