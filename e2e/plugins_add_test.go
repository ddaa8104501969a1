package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPlugin builds the plugin main package pkg as its own binary.
func buildPlugin(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sidestream-"+filepath.Base(pkg))
	if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// sidestream runs the binary with args and returns its combined output
// and whether it exited zero.
func sidestream(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("run sidestream %v: %v", args, err)
	}
	return string(out), err == nil
}

// `plugins add` refuses what would not run (a missing file, a program
// that is no plugin, a plugin of another protocol version, a name in use)
// with a message saying why and a non-zero exit, and leaves the directory
// as it was; `plugins remove` takes a plugin out again.
func TestPluginsAddAndRemoveCommands(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "plugins")
	hello := buildPlugin(t, "../plugins/examples/hello")
	future := buildPlugin(t, "./testdata/futureplugin")
	script := filepath.Join(t.TempDir(), "not-a-plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name, path string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "nope"), []string{"no such file"}},
		{"not a plugin", script, []string{"not a working sidestream plugin"}},
		{"other protocol version", future, []string{"plugin speaks protocol version 2", "this sidestream speaks 1"}},
		{"built-in name", buildPlugin(t, "../plugins/cmd/sidestream-time"), []string{`"time" is a built-in kind`}},
	}
	for _, c := range refused {
		out, ok := sidestream(t, "plugins", "add", "--plugin-dir", dir, c.path)
		for _, want := range c.want {
			if ok || !strings.Contains(out, want) {
				t.Fatalf("add of a %s: ok=%v, output does not say %q:\n%s", c.name, ok, want, out)
			}
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("refused adds left %v in the plugin directory", ents)
	}

	out, ok := sidestream(t, "plugins", "add", "--plugin-dir", dir, hello)
	if !ok || !strings.Contains(out, "added plugin hello") {
		t.Fatalf("add hello: ok=%v\n%s", ok, out)
	}
	var m struct{ Plugins []map[string]string }
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil || len(m.Plugins) != 1 {
		t.Fatalf("manifest after add: %s %v", raw, err)
	}
	if e := m.Plugins[0]; e["name"] != "hello" || e["sha256"] != sha256File(t, hello) || e["sha256"] != sha256File(t, filepath.Join(dir, e["path"])) {
		t.Fatalf("manifest entry %v does not pin the copied binary", e)
	}
	if out, ok := sidestream(t, "plugins", "add", "--plugin-dir", dir, hello); ok || !strings.Contains(out, "already installed") {
		t.Fatalf("second add of hello: ok=%v\n%s", ok, out)
	}
	if out, ok := sidestream(t, "plugins", "verify", "--plugin-dir", dir); !ok || !strings.Contains(out, "hello") {
		t.Fatalf("verify after add: ok=%v\n%s", ok, out)
	}

	if out, ok := sidestream(t, "plugins", "remove", "--plugin-dir", dir, "hello"); !ok || !strings.Contains(out, "removed plugin hello") {
		t.Fatalf("remove hello: ok=%v\n%s", ok, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "hello")); !os.IsNotExist(err) {
		t.Fatalf("remove left the binary: %v", err)
	}
	if out, ok := sidestream(t, "plugins", "remove", "--plugin-dir", dir, "hello"); ok || !strings.Contains(out, `"hello" is not in`) {
		t.Fatalf("second remove: ok=%v\n%s", ok, out)
	}
}

// An external plugin, built as its own binary and installed with
// `plugins add`, serves its kind: an emitter of it created over the API
// streams its events over SSE.
func TestExternalPluginStreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hello := buildPlugin(t, "../plugins/examples/hello")
	if out, ok := sidestream(t, "plugins", "add", "--plugin-dir", dir, hello); !ok {
		t.Fatalf("add hello:\n%s", out)
	}
	sc := startSidecar(t, t.TempDir(), "--plugin-dir", dir)

	var created struct{ ID, Kind string }
	if code := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"hello","config":{}}`, &created); code != http.StatusCreated || created.Kind != "hello" {
		t.Fatalf("create a hello emitter: %d %+v", code, created)
	}
	sse := openSSE(t, sc.URL("/api/v1/streams/"+created.ID+"/sse?after=0&event_types=1"), "")
	for i := uint64(1); i <= 2; i++ {
		ev, err := sse.Next()
		if err != nil || ev.Event != "hello" || ev.ID != i || !strings.Contains(ev.Data, "hello, world") {
			t.Fatalf("event %d of the hello stream: %+v %v", i, ev, err)
		}
	}
	if st := pluginStates(t, sc)["hello"]; st.State != "running" || st.Version != "1.0.0" {
		t.Fatalf("GET /api/v1/plugins: hello is %+v", st)
	}
}
