package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// rulesConfig has three guests of a static source with labels, a rule
// selecting by name glob and label with a label template and a bound on
// its history, and a rule
// whose rendered config its kind refuses (a static guest has no process
// for {pid}), so that guest's attachment fails.
const rulesConfig = `guests:
  sources:
    - name: fleet
      type: static
      labels: {zone: a}
      guests: [{name: vm-1, labels: {tier: gold}}, {name: vm-2, labels: {tier: bronze}}, {name: ct-1, labels: {tier: gold}}]
  rules:
    - name: clock
      match: {name: 'vm-*', labels: {tier: gold}}
      emitters: [{kind: time, config: {interval: 1s}, labels: {tier: '{labels.tier}', where: '{labels.zone}-{guest}'}, retention: {max_events: 77}}]
    - name: stats
      match: {name: 'ct-*'}
      emitters: [{kind: procstat, config: {pid: '{pid}'}}]
`

// guestEvents reads lifecycle events from next until each of want (as
// "type guest") was seen, and returns the attach_failed event's data.
func guestEvents(t *testing.T, how string, next func() (string, json.RawMessage, error), want ...string) api.GuestEvent {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	var failed api.GuestEvent
	for i := 0; len(missing) > 0; i++ {
		if i == 100 {
			t.Fatalf("%s: 100 guest events without %v", how, missing)
		}
		typ, data, err := next()
		if err != nil {
			t.Fatalf("%s: %v; still missing %v", how, err, missing)
		}
		var d api.GuestEvent
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: guest event %s: %v", how, data, err)
		}
		if typ == "attach_failed" {
			failed = d
		}
		delete(missing, typ+" "+d.Guest)
	}
	return failed
}

// Rules select guests by name glob and the labels their source gave them,
// fill templates from those labels, and an attachment the kind refuses is
// an attach_failed event on the guests stream (over SSE and WS), a failed
// emitter in GET /api/v1/guests, and a line of `sidestream guests`.
func TestGuestRulesSelectAndReportFailures(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "sidestream.yaml")
	writeConfig(t, cfg, rulesConfig)
	s := startSidecar(t, t.TempDir(), "--config", cfg)
	defer func() { s.Stop(t) }()

	eventually(t, "vm-1's clock runs and ct-1's stats failed", 30*time.Second, func() bool {
		return emitterState(t, s, "fleet/vm-1", "vm-1.clock") == "present/running" &&
			emitterState(t, s, "fleet/ct-1", "ct-1.stats") == "present/failed"
	})
	gs := guestsOf(t, s)
	if len(gs) != 3 {
		t.Fatalf("guests %v, want vm-1, vm-2, ct-1", gs)
	}
	if g := gs["fleet/vm-2"]; g.State != "present" || len(g.Emitters) != 0 || g.Labels["tier"] != "bronze" || g.Labels["zone"] != "a" {
		t.Fatalf("vm-2 (a bronze vm) %+v: want present, its labels, no emitter", g)
	}
	ct := gs["fleet/ct-1"]
	if len(ct.Emitters) != 1 || ct.Emitters[0].Kind != "procstat" || ct.Emitters[0].Rule != "stats" || !strings.Contains(ct.Emitters[0].Error, "pid") {
		t.Fatalf("ct-1's emitters %+v: want the failed procstat with an error naming pid", ct.Emitters)
	}
	var em api.Emitter
	if code := do(t, http.MethodGet, s.URL("/api/v1/emitters/vm-1.clock"), "", &em); code != http.StatusOK ||
		em.Labels["tier"] != "gold" || em.Labels["where"] != "a-vm-1" || em.Labels["sidestream.guest"] != "vm-1" ||
		em.Retention.MaxEvents != 77 || !em.Retention.Persist || em.Retention.MaxAge != "24h0m0s" {
		t.Fatalf("GET vm-1.clock: %d, labels %v, retention %+v: want the templated tier and where, the rule's max_events over the default",
			code, em.Labels, em.Retention)
	}
	if code := do(t, http.MethodGet, s.URL("/api/v1/emitters/ct-1.stats"), "", nil); code != http.StatusNotFound {
		t.Fatalf("GET ct-1.stats: %d, want 404 (refused, never created)", code)
	}

	want := []string{"appeared vm-1", "appeared vm-2", "appeared ct-1", "attached vm-1", "attach_failed ct-1"}
	check := func(how string, d api.GuestEvent) {
		t.Helper()
		if d.Source != "fleet" || d.Emitter != "ct-1.stats" || d.Kind != "procstat" || d.Rule != "stats" ||
			!strings.Contains(d.Error, "pid") || d.Labels["tier"] != "gold" {
			t.Errorf("%s: attach_failed %+v: want ct-1.stats of rule stats, its error and the guest's labels", how, d)
		}
	}
	sse := openSSE(t, s.URL("/api/v1/streams/guests/sse?from=start&event_types=true"), "")
	defer sse.Close()
	guard := time.AfterFunc(30*time.Second, sse.Close) // a hang guard on the reads
	defer guard.Stop()
	check("SSE", guestEvents(t, "SSE", func() (string, json.RawMessage, error) {
		ev, err := sse.Next()
		return ev.Event, json.RawMessage(ev.Data), err
	}, want...))
	ws := dialWS(t, s.URL("/api/v1/streams/guests/ws?from=start"))
	check("WS", guestEvents(t, "WS", func() (string, json.RawMessage, error) {
		var env api.Event
		readEnvelope(t, ws, &env)
		return env.Type, env.Data, nil
	}, want...))

	stdout, stderr, err := cli(t, cliEnv(), "guests", "--server", "http://"+s.addr)
	if err != nil {
		t.Fatalf("sidestream guests: %v\n%s", err, stderr)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]+"/"+f[1]] = line
	}
	for key, parts := range map[string][]string{
		"fleet/vm-1": {"present", "tier=gold,zone=a", "vm-1.clock (time, running)"},
		"fleet/vm-2": {"present", "tier=bronze,zone=a", " -"},
		"fleet/ct-1": {"present", "ct-1.stats (procstat, failed: ", "pid"},
	} {
		for _, p := range parts {
			if !strings.Contains(rows[key], p) {
				t.Errorf("sidestream guests: row of %s lacks %q:\n%s", key, p, stdout)
			}
		}
	}
	if !strings.HasPrefix(stdout, "SOURCE") || len(rows) != 3 {
		t.Errorf("sidestream guests printed %d rows, want a header and 3:\n%s", len(rows), stdout)
	}
	if _, stderr, err := cli(t, cliEnv(), "guests", "--server", "http://127.0.0.1:1"); err == nil || stderr == "" {
		t.Errorf("sidestream guests of no server: %v, stderr %q; want a message and a non-zero exit", err, stderr)
	}
}
