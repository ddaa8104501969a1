package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sidestream/sidestream/sidecar/api"
)

type apiErr struct {
	Error struct {
		Code    string
		Message string
		Fields  []struct{ Field, Message string }
	}
}

// Bad emitter requests get a clear 4xx naming what is wrong, and the
// sidecar keeps serving.
func TestBadEmitterRequests(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.log"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.log"), filepath.Join(root, "escape.log")); err != nil {
		t.Fatal(err)
	}
	sc := startSidecar(t, t.TempDir(), "--log-root", root)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"unknown kind", "POST", "/api/v1/emitters", `{"kind":"nope","config":{}}`, 400, "unknown_kind", ""},
		{"schema: negative rate", "PUT", "/log", `{"source":"synthetic","rate":-5}`, 400, "invalid", "rate"},
		{"schema: magic rate too high", "POST", "/api/v1/emitters", `{"kind":"magic","config":{"rate":1000000}}`, 400, "invalid", "rate"},
		{"path outside the roots", "PUT", "/log", fmt.Sprintf(`{"source":"file","path":%q}`, filepath.Join(outside, "secret.log")), 400, "invalid", "path"},
		{"path through ..", "PUT", "/log", fmt.Sprintf(`{"source":"file","path":%q}`, root+"/../"+filepath.Base(outside)+"/secret.log"), 400, "invalid", "path"},
		{"symlink escaping the root", "PUT", "/log", fmt.Sprintf(`{"source":"file","path":%q}`, filepath.Join(root, "escape.log")), 400, "invalid", "path"},
		{"relative path", "PUT", "/log", `{"source":"file","path":"console.log"}`, 400, "invalid", "path"},
		{"unknown emitter", "GET", "/log/does-not-exist", "", 404, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e apiErr
			status := do(t, tc.method, sc.URL(tc.path), tc.body, &e)
			if status != tc.status || e.Error.Code != tc.code {
				t.Fatalf("%s %s: %d %+v, want %d %s", tc.method, tc.path, status, e, tc.status, tc.code)
			}
			if e.Error.Message == "" {
				t.Fatal("error without a message")
			}
			if tc.field != "" && !hasField(e, tc.field) {
				t.Fatalf("fields %+v do not name %q", e.Error.Fields, tc.field)
			}
		})
	}
	var r struct{ Position int }
	if code := do(t, http.MethodPost, sc.URL("/fib/next"), "", &r); code != http.StatusOK || r.Position != 1 {
		t.Fatalf("sidecar stopped serving after bad input: %d %+v", code, r)
	}
}

func hasField(e apiErr, field string) bool {
	for _, f := range e.Error.Fields {
		if f.Field == field || strings.HasSuffix(f.Field, "/"+field) || strings.HasSuffix(f.Field, "."+field) {
			return true
		}
	}
	return false
}

// A data file that is not sidestream's is refused with a clear message
// naming it, and not a byte of it changes.
func TestForeignOrCorruptStateFileIsRefused(t *testing.T) {
	t.Parallel()
	foreign := func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("their-data"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("precious"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	corrupt := func(t *testing.T, path string) {
		if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, create := range map[string]func(*testing.T, string){"foreign": foreign, "corrupt": corrupt} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "sidestream.db")
			create(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sc := launch(t, dir)
			if code := sc.Wait(t); code == 0 {
				t.Fatal("sidestream started on a file that is not its own")
			}
			if !strings.Contains(sc.Logs(), path) {
				t.Fatalf("the error does not name %s:\n%s", path, sc.Logs())
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("the refused file was modified")
			}
		})
	}
}

// External plugins that crash at once, print garbage before the handshake,
// hang at start or do not match their pinned checksum each fail with a
// clear error, are not spun, and leave the built-ins and a good external
// plugin working.
func TestBrokenExternalPluginsDoNotHurtTheOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(dir, "example-counter")
	build := exec.Command("go", "build", "-o", counter, "../plugins/cmd/example-counter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build example-counter: %v\n%s", err, out)
	}
	scripts := map[string]string{
		"crasher": "#!/bin/sh\nexit 3\n",
		"garbage": "#!/bin/sh\necho 'this is not a handshake'\nexec sleep 60\n",
		"hanger":  "#!/bin/sh\nexec sleep 60\n",
	}
	entries := []map[string]string{{"name": "counter", "path": "example-counter", "sha256": sha256File(t, counter)}}
	for name, body := range scripts {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, map[string]string{"name": name, "path": name, "sha256": sha256File(t, path)})
	}
	entries = append(entries, map[string]string{"name": "tampered", "path": "example-counter", "sha256": strings.Repeat("ab", 32)})
	manifest, _ := json.Marshal(map[string]any{"plugins": entries})
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	sc := startSidecar(t, t.TempDir(), "--plugin-dir", dir, "--plugin-start-timeout", "2s")

	wantErr := map[string]string{"crasher": "", "garbage": "", "hanger": "", "tampered": "checksum"}
	eventually(t, "the broken plugins to be marked failed", 90*time.Second, func() bool {
		st := pluginStates(t, sc)
		for name, want := range wantErr {
			p, ok := st[name]
			if !ok || p.State != "failed" || !strings.Contains(p.LastError, want) || p.LastError == "" {
				return false
			}
		}
		return st["counter"].State == "running"
	})
	restarts := pluginStates(t, sc)["crasher"].Restarts
	if restarts > 10 {
		t.Fatalf("crasher restarted %d times: the crash loop was not broken", restarts)
	}

	var created struct{ ID string }
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"counter","config":{"interval":"20ms"}}`, &created); code != http.StatusCreated {
		t.Fatalf("create a counter emitter: %d", code)
	}
	sse := openSSE(t, sc.URL("/api/v1/streams/"+created.ID+"/sse?after=0&event_types=1"), "")
	if ev, err := sse.Next(); err != nil || ev.Event != "count" {
		t.Fatalf("counter stream: %+v %v", ev, err)
	}
	var e apiErr
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"crasher","config":{}}`, &e); code < 400 || code >= 600 || code == 500 {
		t.Fatalf("emitter of a failed plugin: %d %+v, want a clear 4xx/503", code, e)
	}
	var r struct{ Position int }
	if code := do(t, http.MethodGet, sc.URL("/fib/next"), "", &r); code != http.StatusOK || r.Position != 1 {
		t.Fatalf("built-in fibonacci: %d %+v", code, r)
	}
}

func pluginStates(t *testing.T, sc *sidecar) map[string]api.Plugin {
	t.Helper()
	var resp api.Items[api.Plugin]
	var raw json.RawMessage
	if code := do(t, http.MethodGet, sc.URL("/api/v1/plugins"), "", &raw); code != http.StatusOK {
		t.Fatalf("GET /api/v1/plugins: %d", code)
	}
	if err := json.Unmarshal(raw, &resp); err != nil || resp.Items == nil {
		// A bare array is fine too.
		if err := json.Unmarshal(raw, &resp.Items); err != nil {
			t.Fatalf("plugins answer %s: %v", raw, err)
		}
	}
	out := map[string]api.Plugin{}
	for _, p := range resp.Items {
		out[p.Name] = p
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}
