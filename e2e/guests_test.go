package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// guestsOf lists the sidecar's guests by "source/name".
func guestsOf(t *testing.T, s *sidecar) map[string]api.Guest {
	t.Helper()
	var out api.Items[api.Guest]
	if code := do(t, "GET", s.URL("/api/v1/guests"), "", &out); code != 200 {
		t.Fatalf("GET /api/v1/guests: %d", code)
	}
	m := map[string]api.Guest{}
	for _, g := range out.Items {
		m[g.Source+"/"+g.Name] = g
	}
	return m
}

// emitterState is the state of guest key's emitter id ("" if not listed).
func emitterState(t *testing.T, s *sidecar, key, id string) string {
	g, ok := guestsOf(t, s)[key]
	if !ok {
		return ""
	}
	for _, e := range g.Emitters {
		if e.ID == id {
			return g.State + "/" + e.State
		}
	}
	return g.State + "/"
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// guestEmitterIDs lists the ids of the emitters attached to guests.
func guestEmitterIDs(t *testing.T, s *sidecar) []string {
	t.Helper()
	var page struct {
		Items []struct {
			ID     string            `json:"id"`
			Labels map[string]string `json:"labels"`
		} `json:"items"`
	}
	if code := do(t, "GET", s.URL("/api/v1/emitters?limit=1000"), "", &page); code != 200 {
		t.Fatalf("list emitters: %d", code)
	}
	var ids []string
	for _, e := range page.Items {
		if e.Labels["sidestream.guest"] != "" {
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Guests found by files and pid files get their emitters when they
// appear, have them stopped (history kept) when they go, and a restart
// with guests present attaches them again without a second emitter.
func TestGuestsAttachAndStopEmitters(t *testing.T) {
	root := t.TempDir()
	vms, pids := filepath.Join(root, "vms"), filepath.Join(root, "pids")
	for _, d := range []string{filepath.Join(vms, "vm-a"), pids} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(t, filepath.Join(vms, "vm-a", "console.log"), "boot a\n")
	cfg := filepath.Join(root, "sidestream.yaml")
	writeConfig(t, cfg, fmt.Sprintf(`log_roots: [%q]
guests:
  sources:
    - {name: vms, type: files, pattern: '%s/{guest}/console.log', labels: {tier: vm}}
    - {name: procs, type: pidfile, pattern: '%s/{guest}.pid', every: 100ms}
  rules:
    - name: console
      match: {source: vms, labels: {tier: vm}}
      emitters: [{kind: log, config: {source: file, path: '{path}'}}]
    - name: stats
      match: {source: procs}
      emitters: [{kind: procstat, config: {pid: '{pid}', interval: 200ms}}]
`, vms, vms, pids))
	data := t.TempDir()
	s := startSidecar(t, data, "--config", cfg)
	defer func() { s.Stop(t) }()
	lifecycle := openSSE(t, s.URL("/api/v1/streams/guests/sse?from=start&event_types=true"), "")
	defer lifecycle.Close()

	eventually(t, "vm-a's log emitter runs", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-a", "vm-a.console") == "present/running"
	})
	f, err := os.OpenFile(filepath.Join(vms, "vm-a", "console.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "kernel: hello from vm-a")
	f.Close()
	eventually(t, "vm-a's console line reaches its stream", 30*time.Second, func() bool {
		var page api.EventPage
		do(t, "GET", s.URL("/api/v1/streams/vm-a.console/events?after=0"), "", &page)
		for _, ev := range page.Events {
			if strings.Contains(string(ev.Data), "hello from vm-a") {
				return true
			}
		}
		return false
	})

	// A guest created while running; a process guest started by the test.
	if err := os.MkdirAll(filepath.Join(vms, "vm-b"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(vms, "vm-b", "console.log"), "boot b\n")
	proc := exec.Command("sleep", "600")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Process.Kill(); _, _ = proc.Process.Wait() }()
	writeConfig(t, filepath.Join(pids, "p1.pid"), strconv.Itoa(proc.Process.Pid))
	eventually(t, "vm-b and p1 get their emitters", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-b", "vm-b.console") == "present/running" &&
			emitterState(t, s, "procs/p1", "p1.stats") == "present/running"
	})

	// Going away: vm-a's file removed, p1's process killed.
	if err := os.Remove(filepath.Join(vms, "vm-a", "console.log")); err != nil {
		t.Fatal(err)
	}
	_ = proc.Process.Kill()
	_, _ = proc.Process.Wait()
	eventually(t, "vm-a and p1 are gone with their emitters stopped", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-a", "vm-a.console") == "gone/stopped" &&
			emitterState(t, s, "procs/p1", "p1.stats") == "gone/stopped"
	})
	var kept api.EventPage
	if code := do(t, "GET", s.URL("/api/v1/streams/vm-a.console/events?after=0"), "", &kept); code != 200 || len(kept.Events) == 0 {
		t.Fatalf("history of gone vm-a: %d, %d events; want it kept", code, len(kept.Events))
	}

	want := map[string]bool{"appeared vm-a": true, "attached vm-a": true, "appeared vm-b": true, "appeared p1": true,
		"gone vm-a": true, "detached vm-a": true, "gone p1": true}
	guard := time.AfterFunc(30*time.Second, lifecycle.Close) // a hang guard on the reads
	defer guard.Stop()
	for len(want) > 0 {
		ev, err := lifecycle.Next()
		if err != nil {
			t.Fatalf("guests stream: %v; still missing %v", err, want)
		}
		var d api.GuestEvent
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			t.Fatalf("guest event %q: %v", ev.Data, err)
		}
		delete(want, ev.Event+" "+d.Guest)
	}

	// Restart with vm-b present and vm-a, p1 gone: the same three
	// emitters, vm-b's running again, none twice.
	before := guestEmitterIDs(t, s)
	if !slices.Equal(before, []string{"p1.stats", "vm-a.console", "vm-b.console"}) {
		t.Fatalf("guest emitters %v", before)
	}
	lifecycle.Close()
	if code := s.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	s = startSidecar(t, data, "--config", cfg)
	eventually(t, "vm-b's emitter runs after the restart", 30*time.Second, func() bool {
		return emitterState(t, s, "vms/vm-b", "vm-b.console") == "present/running"
	})
	if after := guestEmitterIDs(t, s); !slices.Equal(after, before) {
		t.Fatalf("guest emitters after restart %v, want %v", after, before)
	}
	var em struct {
		Stopped bool `json:"stopped"`
	}
	do(t, "GET", s.URL("/api/v1/emitters/vm-a.console"), "", &em)
	if !em.Stopped {
		t.Errorf("gone vm-a's emitter runs again after the restart")
	}
}

// procstat of a process the test runs reports its CPU and memory within
// sane bounds.
func TestProcstatOfABusyProcess(t *testing.T) {
	s := startSidecar(t, t.TempDir())
	defer func() { s.Stop(t) }()
	busy := exec.Command("sh", "-c", "while kill -0 $PPID 2>/dev/null; do :; done") // ends with the test
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Process.Kill(); _, _ = busy.Process.Wait() }()
	body := fmt.Sprintf(`{"id":"busy","kind":"procstat","config":{"pid":%d,"interval":"200ms"}}`, busy.Process.Pid)
	if code := do(t, "POST", s.URL("/api/v1/emitters"), body, nil); code != 201 {
		t.Fatalf("create procstat: %d", code)
	}
	st := openSSE(t, s.URL("/api/v1/streams/busy/sse?from=start"), "")
	defer st.Close()
	maxCPU := 100*float64(runtime.NumCPU()) + 20 // one sample's jitter
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no sample showed the busy process using CPU")
		}
		ev, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		var smp struct {
			Processes  int     `json:"processes"`
			CPUPercent float64 `json:"cpu_percent"`
			CPUSeconds float64 `json:"cpu_seconds"`
			RSSBytes   int64   `json:"rss_bytes"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &smp); err != nil {
			t.Fatal(err)
		}
		if smp.Processes != 1 || smp.RSSBytes < 64<<10 || smp.RSSBytes > 1<<30 || smp.CPUPercent < 0 || smp.CPUPercent > maxCPU {
			t.Fatalf("sample %s out of bounds (1 process, 64 KiB..1 GiB resident, CPU 0..%v%%)", ev.Data, maxCPU)
		}
		if smp.CPUPercent > 5 && smp.CPUSeconds > 0 {
			return
		}
	}
}

// A bad rule is refused with its line and field: at start the server
// does not start; on SIGHUP the rules in force stay.
func TestBadGuestRuleIsRefused(t *testing.T) {
	root := t.TempDir()
	cfg := filepath.Join(root, "sidestream.yaml")
	good := `guests:
  sources:
    - {name: fixed, type: static, guests: [{name: a}]}
  rules:
    - name: clock
      emitters: [{kind: time, config: {interval: 1s}}]
`
	writeConfig(t, cfg, strings.Replace(good, "kind: time", "kind: nosuchkind", 1))
	bad := launch(t, t.TempDir(), "--config", cfg)
	if code := bad.Wait(t); code == 0 {
		t.Fatal("a rule of an unknown kind was accepted")
	}
	if logs := bad.Logs(); !strings.Contains(logs, "guests.rules[0].emitters[0].kind") || !strings.Contains(logs, "line 6") {
		t.Fatalf("refusal does not name the field and line:\n%s", logs)
	}

	writeConfig(t, cfg, good)
	s := startSidecar(t, t.TempDir(), "--config", cfg)
	defer func() { s.Stop(t) }()
	eventually(t, "a.clock runs", 30*time.Second, func() bool { return emitterState(t, s, "fixed/a", "a.clock") == "present/running" })

	// A rule change applies on SIGHUP: the new emitter runs, the old one stops.
	writeConfig(t, cfg, strings.Replace(good, "name: clock", "name: tick", 1))
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "a.tick runs after the reload", 30*time.Second, func() bool { return emitterState(t, s, "fixed/a", "a.tick") == "present/running" })
	if st := emitterState(t, s, "fixed/a", "a.clock"); st != "present/" {
		t.Fatalf("a.clock after its rule was removed: %q, want no longer attached", st)
	}
	var old struct {
		Stopped bool `json:"stopped"`
	}
	if do(t, "GET", s.URL("/api/v1/emitters/a.clock"), "", &old); !old.Stopped {
		t.Fatal("the emitter of the removed rule still runs")
	}

	// A bad rule on reload is refused; the rules in force stay.
	writeConfig(t, cfg, strings.Replace(good, "interval: 1s", "interval: '{nope}'", 1))
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the refusal is logged with field and line", 30*time.Second, func() bool {
		logs := s.Logs()
		return strings.Contains(logs, "reload refused") && strings.Contains(logs, "guests.rules[0].emitters[0].config") && strings.Contains(logs, "line 6")
	})
	if st := emitterState(t, s, "fixed/a", "a.tick"); st != "present/running" {
		t.Fatalf("a.tick after a refused reload: %q", st)
	}
}
