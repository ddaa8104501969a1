// The supervision tests signal plugin processes (SIGKILL, SIGSTOP, signal
// 0 to probe): Unix only.

//go:build unix

package pluginhost

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

func TestEventsFlowAndAPI(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	h := newHost(t, fastConfig(builtin("counter", "counter")), nil)

	kind, err := h.Describe(ctx, "counter")
	if err != nil || kind.Name != "counter" || kind.Version != "1.2.3" || len(kind.Commands) != 1 || len(kind.ConfigSchema) == 0 {
		t.Fatalf("describe = %+v, %v", kind, err)
	}
	norm, err := h.Validate(ctx, "counter", json.RawMessage(`{"interval_ms":1}`))
	if err != nil || string(norm) != `{"batch":1,"interval_ms":1}` {
		t.Fatalf("validate = %s, %v", norm, err)
	}
	_, err = h.Validate(ctx, "counter", json.RawMessage(`{"batch":0,"color":"red"}`))
	var ve *emitter.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("validate bad config = %v, want 2 field errors", err)
	}
	for _, k := range []string{"nope"} {
		if _, err := h.Validate(ctx, k, nil); !errors.Is(err, emitter.ErrUnknownKind) {
			t.Fatalf("unknown kind: %v", err)
		}
		if err := h.Start(ctx, k, "x", nil, &recSink{}); !errors.Is(err, emitter.ErrUnknownKind) {
			t.Fatalf("start unknown kind: %v", err)
		}
	}

	sink := &recSink{}
	if err := h.Start(ctx, "counter", "e1", norm, sink); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, "counter", "e1", norm, sink); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second start = %v", err)
	}
	eventually(t, "50 events", func() bool { return delivered(sink) >= 50 })
	st := statusOf(h, "counter")
	if st.State != StateRunning || st.PID <= 0 || st.Instances != 1 || st.Version != "1.2.3" {
		t.Fatalf("status = %+v", st)
	}

	res, err := h.Command(ctx, "counter", "e1", "add", norm, []byte("40"), json.RawMessage("2"))
	if err != nil || string(res.Result) != "42" || string(res.Batch.Checkpoint) != "42" || len(res.Batch.Events) != 1 {
		t.Fatalf("command = %+v, %v", res, err)
	}
	if _, err := h.Command(ctx, "counter", "e1", "nope", norm, nil, nil); !errors.Is(err, emitter.ErrUnknownCommand) {
		t.Fatalf("unknown command = %v", err)
	}
	var ce *emitter.CommandError
	if _, err := h.Command(ctx, "counter", "e1", "add", norm, nil, json.RawMessage(`"x"`)); !errors.As(err, &ce) || ce.Code != "bad_args" {
		t.Fatalf("bad args = %v", err)
	}

	if err := h.Stop(ctx, "counter", "e1"); err != nil {
		t.Fatal(err)
	}
	_, n, _, broken := sink.snapshot()
	if broken != nil {
		t.Fatal(broken)
	}
	time.Sleep(100 * time.Millisecond)
	if after := delivered(sink); after != n {
		t.Fatalf("delivered %d events after Stop returned", after-n)
	}
	if st := statusOf(h, "counter"); st.Instances != 0 {
		t.Fatalf("instances after stop = %d", st.Instances)
	}
}

// restartAndResume checks that after disturb the plugin runs under a new
// pid and the instance resumed from the last delivered checkpoint.
func restartAndResume(t *testing.T, disturb func(pid int), wantErr string) {
	ctx := ctxT(t)
	h := newHost(t, fastConfig(builtin("counter", "counter")), nil)
	sink := &recSink{}
	if err := h.Start(ctx, "counter", "e1", json.RawMessage(`{"batch":7,"interval_ms":2}`), sink); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first events", func() bool { return delivered(sink) >= 70 })
	pid := statusOf(h, "counter").PID
	disturb(pid)
	eventually(t, "restart under a new pid", func() bool {
		st := statusOf(h, "counter")
		return st.State == StateRunning && st.PID != pid && st.PID != 0
	})
	before := delivered(sink)
	eventually(t, "events after restart", func() bool { return delivered(sink) >= before+70 })

	last, _, starts, broken := sink.snapshot()
	if broken != nil {
		t.Fatalf("stream across restart: %v", broken)
	}
	if len(starts) < 2 || starts[0] != "" {
		t.Fatalf("checkpoints handed out = %q, want a first start with none and a restart", starts)
	}
	// Batches are 7 events with the last one as checkpoint: a resume from
	// the last delivered checkpoint is a multiple of 7, and contiguity
	// (checked by the sink) shows nothing was skipped or repeated.
	for _, cp := range starts[1:] {
		if cp == "" || len(cp) > 0 && mustAtoi(t, cp)%7 != 0 {
			t.Fatalf("restart checkpoint %q is not a delivered batch end", cp)
		}
	}
	st := statusOf(h, "counter")
	if st.Restarts < 1 || !strings.Contains(st.LastError, wantErr) {
		t.Fatalf("status = %+v, want restarts ≥ 1 and last error with %q", st, wantErr)
	}
	if last == 0 {
		t.Fatal("nothing delivered")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("old plugin process %d still exists: %v", pid, err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestKill9RestartsFromCheckpoint(t *testing.T) {
	t.Parallel()
	restartAndResume(t, func(pid int) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}, "")
}

func TestHungPluginDetectedAndReplaced(t *testing.T) {
	t.Parallel()
	restartAndResume(t, func(pid int) {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}, "hung")
}

func TestCrashLoopOpensCircuitOthersKeepWorking(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	startLog := filepath.Join(t.TempDir(), "starts")
	cfg := fastConfig(builtin("exiter", "exit", envStartLog+"="+startLog), builtin("counter", "counter"))
	cfg.CrashLimit = 3
	cfg.CrashWindow = time.Hour
	cfg.CoolDown = 2 * time.Second
	h := newHost(t, cfg, nil)
	sink := &recSink{}
	if err := h.Start(ctx, "counter", "c", nil, sink); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, "exiter", "x", nil, &recSink{}); err != nil {
		t.Fatal(err)
	}
	starts := func() int {
		b, _ := os.ReadFile(startLog)
		return bytes.Count(b, []byte("\n"))
	}
	eventually(t, "exiter failed", func() bool { return statusOf(h, "exiter").State == StateFailed })
	if n := starts(); n != cfg.CrashLimit+1 {
		t.Fatalf("starts before the circuit opened = %d, want %d", n, cfg.CrashLimit+1)
	}
	st := statusOf(h, "exiter")
	if st.LastError == "" || st.PID != 0 {
		t.Fatalf("failed status = %+v", st)
	}
	if _, err := h.Command(ctx, "exiter", "x", "add", nil, nil, nil); !errors.Is(err, emitter.ErrUnavailable) {
		t.Fatalf("command on failed plugin = %v, want ErrUnavailable", err)
	}
	if _, err := h.Validate(ctx, "exiter", nil); !errors.Is(err, emitter.ErrUnavailable) {
		t.Fatalf("validate on failed plugin = %v, want ErrUnavailable", err)
	}
	// The healthy plugin is untouched by its neighbour's crash loop.
	before := delivered(sink)
	eventually(t, "counter keeps delivering", func() bool { return delivered(sink) >= before+20 })
	// After the cool-down exactly one half-open attempt, then failed again.
	eventually(t, "half-open attempt", func() bool { return starts() >= cfg.CrashLimit+2 })
	eventually(t, "failed again", func() bool { return statusOf(h, "exiter").State == StateFailed })
	if n := starts(); n != cfg.CrashLimit+2 {
		t.Fatalf("starts after half-open = %d, want %d", n, cfg.CrashLimit+2)
	}
	if _, _, _, broken := sink.snapshot(); broken != nil {
		t.Fatal(broken)
	}
}

func TestBadPluginsFailClearly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "plugin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     Source
		wantErr string
	}{
		{"garbage", builtin("garbage", "garbage"), "Unrecognized remote plugin message: hello, I am not a plugin"},
		{"checksum", Source{Name: "checksum", Cmd: []string{bin}, SHA256: strings.Repeat("0", 64)}, "checksum mismatch"},
		{"missing", Source{Name: "missing", Cmd: []string{filepath.Join(dir, "nope")}}, "no such file"},
	}
	srcs := []Source{builtin("counter", "counter")}
	for _, tt := range tests {
		srcs = append(srcs, tt.src)
	}
	cfg := fastConfig(srcs...)
	cfg.CrashLimit = 2
	cfg.CoolDown = time.Hour
	h := newHost(t, cfg, nil)
	ctx := ctxT(t)
	sink := &recSink{}
	if err := h.Start(ctx, "counter", "c", nil, sink); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eventually(t, tt.name+" failed", func() bool { return statusOf(h, tt.name).State == StateFailed })
			if st := statusOf(h, tt.name); !strings.Contains(st.LastError, tt.wantErr) {
				t.Fatalf("last error = %q, want it to contain %q", st.LastError, tt.wantErr)
			}
		})
	}
	eventually(t, "counter delivers", func() bool { return delivered(sink) >= 20 })
}

func TestStartTimeout(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(builtin("hang", "hang"))
	cfg.StartTimeout = 300 * time.Millisecond
	h := newHost(t, cfg, nil)
	eventually(t, "start timeout reported", func() bool {
		return strings.Contains(statusOf(h, "hang").LastError, "timeout")
	})
}

func TestPluginStderrInHostLog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	newHost(t, fastConfig(builtin("counter", "counter")), log)
	find := func(msg, level string) map[string]any {
		for _, m := range buf.lines() {
			if m["msg"] == msg && m["level"] == level && m["plugin"] == "counter" {
				return m
			}
		}
		return nil
	}
	eventually(t, "plugin log lines", func() bool {
		return find("counter plugin up", "WARN") != nil && find("raw hello from plugin", "INFO") != nil
	})
	if m := find("counter plugin up", "WARN"); m["pid"] == nil {
		t.Fatalf("plugin attributes lost: %v", m)
	}
}

func TestCloseKillsProcesses(t *testing.T) {
	t.Parallel()
	h, err := New(fastConfig(builtin("a", "counter"), builtin("b", "counter")), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := h.Start(ctx, "a", "i", nil, &recSink{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both running", func() bool {
		return statusOf(h, "a").State == StateRunning && statusOf(h, "b").State == StateRunning
	})
	pids := []int{statusOf(h, "a").PID, statusOf(h, "b").PID}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("plugin process %d survived Close: %v", pid, err)
		}
	}
	for _, s := range h.Plugins() {
		if s.State != StateStopped || s.PID != 0 {
			t.Errorf("after close: %+v", s)
		}
	}
	if err := h.Start(ctx, "a", "j", nil, &recSink{}); !errors.Is(err, ErrClosed) {
		t.Errorf("start after close = %v", err)
	}
}

func TestCloseAbortsStartingPlugin(t *testing.T) {
	t.Parallel()
	startLog := filepath.Join(t.TempDir(), "starts")
	cfg := fastConfig(builtin("hang", "hang", envStartLog+"="+startLog))
	cfg.StartTimeout = time.Hour // Close must not wait for it
	h, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "plugin process started", func() bool {
		b, _ := os.ReadFile(startLog)
		return len(b) > 0
	})
	if err := h.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(startLog)
	pid := mustAtoi(t, strings.TrimSpace(string(b)))
	if alive(pid) {
		t.Fatalf("starting plugin %d survived Close", pid)
	}
}

// alive reports whether pid exists and is not a zombie (an orphan
// re-parented to a non-reaping init stays a zombie, dead all the same).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestNoOrphanWhenHostKilled runs a host in a subprocess, kills it with
// SIGKILL (no cleanup runs) and expects its plugin to die too.
func TestNoOrphanWhenHostKilled(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "internal-host")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("host subprocess: %v", err)
	}
	pid := mustAtoi(t, strings.TrimSpace(line))
	if !alive(pid) {
		t.Fatalf("plugin %d not running under the host", pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, "orphaned plugin gone", func() bool { return !alive(pid) })
}

// A plugin killed with SIGKILL leaves its unix socket behind; it lives in
// the host's own directory, which Close removes, not in the system temp
// dir where it would pile up.
func TestPluginSocketsLiveInHostDirRemovedOnClose(t *testing.T) {
	t.Parallel()
	h, err := New(fastConfig(builtin("a", "counter")), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	eventually(t, "running", func() bool { return statusOf(h, "a").State == StateRunning })
	first := statusOf(h, "a").PID
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restarted", func() bool {
		s := statusOf(h, "a")
		return s.State == StateRunning && s.PID != first
	})
	entries, err := os.ReadDir(h.sockDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no plugin sockets in %s: %v", h.sockDir, err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.sockDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket directory %s survived Close: %v", h.sockDir, err)
	}
}
