package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tailProc is a running `sidestream tail`.
type tailProc struct {
	cmd    *exec.Cmd
	lines  chan string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

func (p *tailProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *tailProc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func startTail(t *testing.T, args ...string) *tailProc {
	t.Helper()
	p := &tailProc{lines: make(chan string, 4096), done: make(chan struct{})}
	p.cmd = exec.Command(binary, append([]string{"tail"}, args...)...)
	p.cmd.Stderr = p
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p
}

// tailed is one line of `tail --output json`.
type tailed struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Type   string `json:"type"`
	Data   struct {
		Line uint64 `json:"line"`
	} `json:"data"`
}

// checker asserts that tail lines are every event once, in order.
type checker struct {
	t      *testing.T
	stream string
	last   tailed
}

func (c *checker) next(p *tailProc) {
	c.t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			c.t.Fatalf("tail ended after seq %d; stderr:\n%s", c.last.Seq, p.Stderr())
		}
		var ev tailed
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			c.t.Fatalf("tail printed %q: %v", line, err)
		}
		if ev.Stream != c.stream || ev.Type != "log" {
			c.t.Fatalf("event %+v: want a log event of %s", ev, c.stream)
		}
		if ev.Seq != c.last.Seq+1 || ev.Data.Line != c.last.Data.Line+1 {
			c.t.Fatalf("after seq %d (line %d) tail printed seq %d (line %d): lost, repeated or reordered; stderr:\n%s",
				c.last.Seq, c.last.Data.Line, ev.Seq, ev.Data.Line, p.Stderr())
		}
		c.last = ev
	case <-time.After(60 * time.Second):
		c.t.Fatalf("no event from tail for 60s after seq %d; stderr:\n%s", c.last.Seq, p.Stderr())
	}
}

// drainTo reads until seq reaches at least n.
func (c *checker) drainTo(p *tailProc, n uint64) {
	c.t.Helper()
	for i := 0; c.last.Seq < n && i < 100000; i++ {
		c.next(p)
	}
}

// sidestream tail keeps following a log emitter across a graceful restart
// and a kill -9 of the sidecar (same port, same data dir): every event is
// printed once, in seq order, and the generator's line counter continues.
func TestTailAcrossSidecarRestarts(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"sse", "ws"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sc := startSidecar(t, dir)
			var created struct{ ID string }
			if code := do(t, http.MethodPut, sc.URL("/log"), `{"rate":100}`, &created); code != http.StatusCreated || created.ID == "" {
				t.Fatalf("PUT /log: %d %+v", code, created)
			}
			addr := sc.addr
			if _, _, err := net.SplitHostPort(addr); err != nil {
				t.Fatal(err)
			}
			p := startTail(t, "--server", "http://"+addr, "--transport", transport, "--after", "0",
				"--output", "json", "--max-backoff", "1s", created.ID)
			c := &checker{t: t, stream: created.ID}
			c.drainTo(p, 100)

			if code := sc.Stop(t); code != 0 {
				t.Fatalf("SIGTERM exit code %d", code)
			}
			sc = startSidecar(t, dir, "--listen", addr)
			c.drainTo(p, c.last.Seq+200)

			sc.Kill()
			startSidecar(t, dir, "--listen", addr) // stopped by its cleanup
			c.drainTo(p, c.last.Seq+200)

			if !strings.Contains(p.Stderr(), "reconnecting") {
				t.Fatalf("tail did not report its reconnects on stderr:\n%s", p.Stderr())
			}
			// SIGINT ends tail with status 0.
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				t.Fatal("tail did not exit within 30s of SIGINT")
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("tail exit code %d after SIGINT; stderr:\n%s", code, p.Stderr())
			}
		})
	}
}

// Bad flags and streams the server does not know end tail at once with a
// message and status 1, without retrying.
func TestTailRefusals(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	server := "http://" + sc.addr
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown stream", []string{"--server", server, "no-such-stream"}, `stream "no-such-stream" not found`},
		{"unknown emitter URL", []string{sc.URL("/sse/log/no-such-id")}, "404"},
		{"unknown stream over ws", []string{"--server", server, "--transport", "ws", "--after", "0", "no-such-stream"}, "404"},
		{"bad transport", []string{"--server", server, "--transport", "carrier-pigeon", "magic"}, "--transport"},
		{"bad output", []string{"--server", server, "--output", "xml", "magic"}, "--output"},
		{"bad after", []string{"--server", server, "--after", "-1", "magic"}, "after"},
		{"no argument", []string{"--server", server}, "arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, append([]string{"tail"}, tt.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("tail kept running (retrying?); stderr:\n%s", stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q: want 1 and a message with %q", code, stderr.String(), tt.want)
			}
		})
	}
}
