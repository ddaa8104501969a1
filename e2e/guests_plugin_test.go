package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// helloEvents reads n hello events from the SSE stream of emitter id,
// starting after seq after, and returns the last seq read.
func helloEvents(t *testing.T, sc *sidecar, id string, after uint64, n int) uint64 {
	t.Helper()
	sse := openSSE(t, sc.URL(fmt.Sprintf("/api/v1/streams/%s/sse?after=%d&event_types=1", id, after)), "")
	defer sse.Close()
	guard := time.AfterFunc(30*time.Second, sse.Close) // a hang guard on the reads
	defer guard.Stop()
	last := after
	for i := 0; i < n; i++ {
		ev, err := sse.Next()
		if err != nil || ev.Event != "hello" || ev.ID <= last || !strings.Contains(ev.Data, "hello, world") {
			t.Fatalf("event %d of %s after seq %d: %+v %v", i+1, id, last, ev, err)
		}
		last = ev.ID
	}
	return last
}

// helloInstances is how many instances the hello plugin process runs.
func helloInstances(t *testing.T, sc *sidecar) int {
	t.Helper()
	return pluginStates(t, sc)["hello"].Instances
}

// An external plugin, built as its own binary and installed with
// `plugins add`, is attached by a rule to every guest of a files source:
// each guest that appears gets a hello emitter (its config templated with
// the guest's name) streaming over SSE, a guest whose file is removed has
// its emitter stopped (the plugin instance ends, the history stays), and a
// restart with guests present attaches them again without a second
// emitter or instance.
func TestExternalPluginAttachedToGuestsByRule(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	if out, ok := sidestream(t, "plugins", "add", "--plugin-dir", plugins, buildPlugin(t, "../plugins/examples/hello")); !ok {
		t.Fatalf("add hello:\n%s", out)
	}
	root := t.TempDir()
	vms := filepath.Join(root, "vms")
	guestFile := func(name string) string { return filepath.Join(vms, name, "console.log") }
	addGuest := func(name string) {
		if err := os.MkdirAll(filepath.Dir(guestFile(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeConfig(t, guestFile(name), "boot "+name+"\n")
	}
	addGuest("vm-a")
	cfg := filepath.Join(root, "sidestream.yaml")
	writeConfig(t, cfg, fmt.Sprintf(`guests:
  sources:
    - {name: vms, type: files, pattern: '%s/{guest}/console.log'}
  rules:
    - name: hello
      match: {source: vms}
      emitters: [{kind: hello, config: {greets: '{guest}'}}]
`, vms))
	data := t.TempDir()
	args := []string{"--plugin-dir", plugins, "--config", cfg}
	s := startSidecar(t, data, args...)
	defer func() { s.Stop(t) }()

	eventually(t, "vm-a gets a running hello emitter", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-a", "vm-a.hello") == "present/running"
	})
	helloEvents(t, s, "vm-a.hello", 0, 2)

	// A guest that appears while the sidecar runs gets its own emitter,
	// with the rule's config filled in with its name.
	addGuest("vm-b")
	eventually(t, "vm-b gets a running hello emitter", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-b", "vm-b.hello") == "present/running"
	})
	var em api.Emitter
	if code := do(t, http.MethodGet, s.URL("/api/v1/emitters/vm-b.hello"), "", &em); code != http.StatusOK || em.Kind != "hello" {
		t.Fatalf("GET vm-b.hello: %d %+v", code, em)
	}
	var conf struct{ Greets string }
	if err := json.Unmarshal(em.Config, &conf); err != nil || conf.Greets != "vm-b" {
		t.Fatalf("vm-b.hello config %s (%v), want greets vm-b", em.Config, err)
	}
	helloEvents(t, s, "vm-b.hello", 0, 2)
	if n := helloInstances(t, s); n != 2 {
		t.Fatalf("the hello plugin runs %d instances for 2 guests", n)
	}

	// A guest that goes away has its emitter stopped: its plugin instance
	// ends, its history stays readable.
	if err := os.Remove(guestFile("vm-a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "vm-a gone with its hello emitter stopped", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-a", "vm-a.hello") == "gone/stopped" && helloInstances(t, s) == 1
	})
	var kept api.EventPage
	if code := do(t, http.MethodGet, s.URL("/api/v1/streams/vm-a.hello/events?after=0"), "", &kept); code != http.StatusOK || len(kept.Events) < 2 {
		t.Fatalf("history of gone vm-a: %d, %d events; want it kept", code, len(kept.Events))
	}

	// Restart with vm-b present: its emitter runs again and streams on
	// from where it was, vm-a's stays stopped, nothing twice.
	before := guestEmitterIDs(t, s)
	if !slices.Equal(before, []string{"vm-a.hello", "vm-b.hello"}) {
		t.Fatalf("guest emitters before the restart %v", before)
	}
	var head api.EventPage
	do(t, http.MethodGet, s.URL("/api/v1/streams/vm-b.hello/events?limit=1"), "", &head)
	if code := s.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	s = startSidecar(t, data, args...)
	eventually(t, "vm-b's hello emitter runs after the restart", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-b", "vm-b.hello") == "present/running"
	})
	helloEvents(t, s, "vm-b.hello", head.Head, 2)
	if after := guestEmitterIDs(t, s); !slices.Equal(after, before) {
		t.Fatalf("guest emitters after the restart %v, want %v", after, before)
	}
	if n := helloInstances(t, s); n != 1 {
		t.Fatalf("after the restart the hello plugin runs %d instances for 1 guest", n)
	}
	if g := guestsOf(t, s)["vms/vm-b"]; len(g.Emitters) != 1 {
		t.Fatalf("vm-b lists %d emitters after the restart, want 1: %+v", len(g.Emitters), g.Emitters)
	}
	var old api.Emitter
	if do(t, http.MethodGet, s.URL("/api/v1/emitters/vm-a.hello"), "", &old); !old.Stopped {
		t.Errorf("gone vm-a's hello emitter runs again after the restart")
	}
}
