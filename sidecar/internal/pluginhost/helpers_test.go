package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// hangGuard bounds every wait in these tests; it is never a performance
// assertion, only a way to fail instead of hanging.
const hangGuard = 60 * time.Second

func builtin(name, mode string, env ...string) Source {
	return Source{Name: name, Cmd: []string{os.Args[0], "internal-plugin", mode}, Env: env}
}

// fastConfig keeps supervision delays short so tests are quick; heartbeat
// timeouts stay generous for a loaded machine.
func fastConfig(srcs ...Source) Config {
	return Config{
		Sources:           srcs,
		StartTimeout:      20 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond,
		HeartbeatTimeout:  time.Second,
		HeartbeatMisses:   3,
		BackoffBase:       10 * time.Millisecond,
		BackoffMax:        200 * time.Millisecond,
		KillTimeout:       3 * time.Second,
		ReadyWait:         hangGuard,
	}
}

func newHost(t *testing.T, cfg Config, log *slog.Logger) *Host {
	t.Helper()
	h, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statusOf(h *Host, name string) PluginStatus {
	for _, s := range h.Plugins() {
		if s.Name == name {
			return s
		}
	}
	return PluginStatus{}
}

func delivered(s *recSink) int { _, n, _, _ := s.snapshot(); return n }

// syncBuffer is a bytes.Buffer safe for the host's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
