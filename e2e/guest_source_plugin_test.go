package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// lifecycleOf lists the guests stream's events of type typ as
// "source/guest".
func lifecycleOf(t *testing.T, s *sidecar, typ string) []string {
	t.Helper()
	var page api.EventPage
	if code := do(t, http.MethodGet, s.URL("/api/v1/streams/guests/events?after=0&limit=1000"), "", &page); code != http.StatusOK {
		t.Fatalf("guests stream history: %d", code)
	}
	var out []string
	for _, ev := range page.Events {
		var l struct{ Guest, Source string }
		if ev.Type == typ && json.Unmarshal(ev.Data, &l) == nil {
			out = append(out, l.Source+"/"+l.Guest)
		}
	}
	return out
}

// A guest-source plugin built as its own binary and installed with
// `plugins add` reports guests: they are listed with the source's labels
// and get the rule's emitters; killing the plugin restarts it without
// dropping its guests; a guest it stops reporting is gone and its
// emitter stopped.
func TestGuestSourcePluginEndToEnd(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	plugins, guests := filepath.Join(root, "plugins"), filepath.Join(root, "guests")
	if err := os.MkdirAll(filepath.Join(guests, "vm-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildPlugin(t, "../plugins/examples/dirguests")
	if out, ok := sidestream(t, "plugins", "add", "--plugin-dir", plugins, bin); !ok || !strings.Contains(out, "added plugin dirguests") {
		t.Fatalf("add dirguests: ok=%v\n%s", ok, out)
	}
	cfg := filepath.Join(root, "sidestream.yaml")
	writeConfig(t, cfg, fmt.Sprintf(`guests:
  sources:
    - name: dirs
      type: plugin
      kind: dirguests
      config: {dir: %q, interval_ms: 50}
      labels: {via: plugin}
  rules:
    - name: clock
      match: {source: dirs, labels: {via: plugin}}
      emitters: [{kind: time, config: {interval: 1s}}]
`, guests))
	s := startSidecar(t, t.TempDir(), "--plugin-dir", plugins, "--config", cfg)
	defer func() { s.Stop(t) }()

	eventually(t, "vm-a is listed with its emitter running", 60*time.Second, func() bool {
		return emitterState(t, s, "dirs/vm-a", "vm-a.clock") == "present/running"
	})
	if a := send(t, http.MethodPost, s.URL("/api/v1/emitters"), `{"kind":"dirguests","config":{}}`, nil); a.status < 400 || a.status >= 500 {
		t.Fatalf("an emitter of the guest-only plugin: %d, want a 4xx: %s", a.status, a.body)
	}
	var kinds api.Items[api.Kind]
	if code := do(t, http.MethodGet, s.URL("/api/v1/kinds"), "", &kinds); code != http.StatusOK {
		t.Fatalf("GET /api/v1/kinds: %d", code)
	}
	for _, k := range kinds.Items {
		if k.Name == "dirguests" {
			t.Fatalf("the guest-only plugin is listed as an emitter kind: %+v", k)
		}
	}
	if g := guestsOf(t, s)["dirs/vm-a"]; g.Labels["via"] != "plugin" || g.Path != filepath.Join(guests, "vm-a") {
		t.Fatalf("vm-a listed as %+v: want the source's label and the plugin's path", g)
	}
	if err := os.Mkdir(filepath.Join(guests, "vm-b"), 0o755); err != nil {
		t.Fatal(err)
	}
	eventually(t, "vm-b appears with its emitter", 60*time.Second, func() bool {
		return emitterState(t, s, "dirs/vm-b", "vm-b.clock") == "present/running"
	})

	// A crash of the plugin: restarted, its guests never reported gone.
	before := pluginStates(t, s)["dirguests"]
	killProcess(t, before.PID)
	eventually(t, "the plugin runs again", 60*time.Second, func() bool {
		st := pluginStates(t, s)["dirguests"]
		return st.State == "running" && st.Restarts > before.Restarts && st.PID != before.PID
	})
	if err := os.Mkdir(filepath.Join(guests, "vm-c"), 0o755); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restarted plugin reports vm-c", 60*time.Second, func() bool {
		return emitterState(t, s, "dirs/vm-c", "vm-c.clock") == "present/running"
	})
	if gone := lifecycleOf(t, s, "gone"); len(gone) != 0 {
		t.Fatalf("the plugin's crash made %v gone", gone)
	}
	if st := emitterState(t, s, "dirs/vm-a", "vm-a.clock"); st != "present/running" {
		t.Fatalf("vm-a after the plugin restarted: %q", st)
	}

	// A guest the plugin no longer reports is gone, its emitter stopped.
	if err := os.Remove(filepath.Join(guests, "vm-a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "vm-a is gone", 60*time.Second, func() bool { return guestsOf(t, s)["dirs/vm-a"].State == "gone" })
	var em struct {
		Stopped bool `json:"stopped"`
	}
	if code := do(t, http.MethodGet, s.URL("/api/v1/emitters/vm-a.clock"), "", &em); code != http.StatusOK || !em.Stopped {
		t.Fatalf("vm-a.clock after vm-a went: %d stopped=%v", code, em.Stopped)
	}
	if gone := lifecycleOf(t, s, "gone"); len(gone) != 1 || gone[0] != "dirs/vm-a" {
		t.Fatalf("gone events %v, want dirs/vm-a only", gone)
	}
	if st := emitterState(t, s, "dirs/vm-b", "vm-b.clock"); st != "present/running" {
		t.Fatalf("vm-b: %q", st)
	}
}

// A plugin source whose config breaks the plugin's schema stops the
// start, naming the field and line.
func TestGuestSourcePluginBadConfigRefused(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	plugins := filepath.Join(root, "plugins")
	if out, ok := sidestream(t, "plugins", "add", "--plugin-dir", plugins, buildPlugin(t, "../plugins/examples/dirguests")); !ok {
		t.Fatalf("add dirguests:\n%s", out)
	}
	cfg := filepath.Join(root, "sidestream.yaml")
	for _, tc := range []struct{ source, want string }{
		{"{name: dirs, type: plugin, kind: dirguests, config: {dir: /srv, interval_ms: 1}}", "guests.sources[0].config.interval_ms"},
		{"{name: dirs, type: plugin, kind: dirguests, config: {dir: relative}}", "guests.sources[0].config.dir"},
		{"{name: dirs, type: plugin, kind: time, config: {}}", "guests.sources[0].kind"},
	} {
		writeConfig(t, cfg, "guests:\n  sources:\n    - "+tc.source+"\n")
		bad := launch(t, t.TempDir(), "--plugin-dir", plugins, "--config", cfg)
		if code := bad.Wait(t); code == 0 {
			t.Fatalf("%s: accepted", tc.source)
		}
		if logs := bad.Logs(); !strings.Contains(logs, tc.want) || !strings.Contains(logs, "line 3") {
			t.Fatalf("%s: refusal does not name %s and line 3:\n%s", tc.source, tc.want, logs)
		}
	}
}
