package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLogWriter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		writes []string
		want   []map[string]any // subset of each re-emitted record
	}{
		{
			name:   "sdk slog json keeps level message attrs",
			writes: []string{`{"time":"2025-01-01T00:00:00Z","level":"WARN","msg":"slow","latency_ms":12,"plugin":"x"}` + "\n"},
			want:   []map[string]any{{"level": "WARN", "msg": "slow", "latency_ms": 12.0, "plugin": "p", "plugin_attr": "x"}},
		},
		{
			name:   "hclog json",
			writes: []string{`{"@level":"error","@message":"boom","@module":"go-plugin","@timestamp":"x"}` + "\n"},
			want:   []map[string]any{{"level": "ERROR", "msg": "boom", "module": "go-plugin", "plugin": "p"}},
		},
		{
			name:   "raw text at info, split across writes",
			writes: []string{"hello ", "world\nsecond", " line\n"},
			want:   []map[string]any{{"level": "INFO", "msg": "hello world"}, {"level": "INFO", "msg": "second line"}},
		},
		{
			name:   "broken json is text",
			writes: []string{"{not json\n", "\n", "\r\n"},
			want:   []map[string]any{{"level": "INFO", "msg": "{not json"}},
		},
		{
			name:   "unterminated last line is flushed",
			writes: []string{"panic: oops"},
			want:   []map[string]any{{"level": "INFO", "msg": "panic: oops"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			w := newLogWriter(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "p")
			for _, s := range tt.writes {
				if _, err := io.WriteString(w, s); err != nil {
					t.Fatal(err)
				}
			}
			w.flush()
			got := buf.lines()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records %v, want %d", len(got), got, len(tt.want))
			}
			for i, want := range tt.want {
				for k, v := range want {
					if got[i][k] != v {
						t.Errorf("record %d: %s = %v, want %v (%v)", i, k, got[i][k], v, got[i])
					}
				}
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	base, maxD := 100*time.Millisecond, 30*time.Second
	for n := 1; n <= 40; n++ {
		want := min(base<<min(n-1, 20), maxD)
		for range 20 {
			if d := backoff(base, maxD, n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func writeManifest(t *testing.T, dir string, m Manifest) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadManifestRejects(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("a", 64)
	tests := []struct {
		name  string
		entry ManifestEntry
	}{
		{"escapes dir", ManifestEntry{Name: "x", Path: "../x", SHA256: sum}},
		{"absolute", ManifestEntry{Name: "x", Path: "/bin/sh", SHA256: sum}},
		{"no checksum", ManifestEntry{Name: "x", Path: "x"}},
		{"bad checksum", ManifestEntry{Name: "x", Path: "x", SHA256: "zz"}},
		{"no name", ManifestEntry{Path: "x", SHA256: sum}},
		{"env without a name", ManifestEntry{Name: "x", Path: "x", SHA256: sum, Env: []string{"=v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeManifest(t, dir, Manifest{Plugins: []ManifestEntry{tt.entry}})
			if _, err := LoadManifest(dir); !errors.Is(err, ErrManifest) {
				t.Fatalf("err = %v, want ErrManifest", err)
			}
		})
	}
	t.Run("symlink out of dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Symlink("/bin/sh", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		writeManifest(t, dir, Manifest{Plugins: []ManifestEntry{{Name: "x", Path: "link", SHA256: sum}}})
		if _, err := LoadManifest(dir); !errors.Is(err, ErrManifest) {
			t.Fatalf("err = %v, want ErrManifest", err)
		}
	})
}

// TestManifestPlugins runs a pinned external plugin next to one whose
// binary changed after pinning: the first works, the second fails with a
// checksum error.
func TestManifestPlugins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(self)
	for _, name := range []string{"good", "tampered"} {
		if err := os.WriteFile(filepath.Join(dir, name), self, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"internal-plugin", "counter"}
	writeManifest(t, dir, Manifest{Plugins: []ManifestEntry{
		{Name: "good", Path: "good", SHA256: hex.EncodeToString(sum[:]), Args: args},
		{Name: "tampered", Path: "./tampered", SHA256: hex.EncodeToString(sum[:]), Args: args},
	}})
	f, err := os.OpenFile(filepath.Join(dir, "tampered"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("tampered")
	f.Close()

	srcs, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(srcs...)
	cfg.CrashLimit = 1
	cfg.CoolDown = time.Hour
	h := newHost(t, cfg, nil)
	ctx := ctxT(t)
	sink := &recSink{}
	if err := h.Start(ctx, "good", "g", nil, sink); err != nil {
		t.Fatal(err)
	}
	eventually(t, "events from the pinned plugin", func() bool { return delivered(sink) >= 10 })
	eventually(t, "tampered plugin failed", func() bool { return statusOf(h, "tampered").State == StateFailed })
	if st := statusOf(h, "tampered"); !strings.Contains(st.LastError, "checksum mismatch") {
		t.Fatalf("tampered status = %+v", st)
	}
	if _, err := h.Describe(context.Background(), "tampered"); err == nil {
		t.Fatal("describe of a never-started plugin succeeded")
	}
}

// TestManifestEnv: a plugin's environment is what its manifest entry
// lists, a bare name taking the sidecar's value (or nothing), and never
// the rest of the sidecar's environment.
func TestManifestEnv(t *testing.T) {
	t.Setenv("PLUGINHOST_TEST_PASSED", "from-host")
	t.Setenv("SIDESTREAM_AUTH_JWT_SECRET", "never-for-plugins")
	dir := t.TempDir()
	writeManifest(t, dir, Manifest{Plugins: []ManifestEntry{{Name: "x", Path: "x", SHA256: strings.Repeat("a", 64),
		Env: []string{"PLUGINHOST_TEST_PASSED", "LITERAL=a=b", "PLUGINHOST_TEST_ABSENT"}}}})
	srcs, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PLUGINHOST_TEST_PASSED=from-host", "LITERAL=a=b"}
	if got := srcs[0].Env; !slices.Equal(got, want) {
		t.Fatalf("env = %q, want %q", got, want)
	}
}
