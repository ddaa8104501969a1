package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

func loadYAML(t *testing.T, text string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidestream.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(Sources{File: path})
}

const goodGuests = `guests:
  sources:
    - name: vms
      type: files
      pattern: /var/log/guests/{guest}/console.log
      labels: {tier: vm}
    - name: fixed
      type: static
      guests: [{name: a}, {name: b, labels: {x: "1"}}]
  rules:
    - name: console
      match: {name: "vm-*", source: vms}
      emitters:
        - kind: log
          config: {path: "{path}"}
        - kind: procstat
          id: "{guest}-stats"
          config: {pid: "{pid}", interval: 1s}
`

func TestGuestsConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := loadYAML(t, goodGuests)
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Guests
	if len(g.Sources) != 2 || g.Sources[0].Line != 3 || g.Sources[1].Guests[1].Labels["x"] != "1" {
		t.Fatalf("sources %+v", g.Sources)
	}
	r := g.Rules[0].Rule()
	if r.Line != 11 || r.Selector.Name != "vm-*" || len(r.Emitters) != 2 || r.Emitters[1].Line != 16 {
		t.Fatalf("rule %+v", r)
	}
}

func TestBadGuestRuleIsRefusedWithLineAndField(t *testing.T) {
	t.Parallel()
	base := "guests:\n  sources:\n    - {name: vms, type: files, pattern: '/g/{guest}/c.log'}\n  rules:\n"
	for _, tc := range []struct {
		name, rules string
		want        []string
	}{
		{"no kind", "    - name: r\n      emitters:\n        - config: {}\n", []string{"guests.rules[0].emitters[0].kind", "line 7", "is required"}},
		{"unknown placeholder", "    - name: r\n      emitters:\n        - kind: log\n          config: {path: '{nope}'}\n", []string{"guests.rules[0].emitters[0].config", "line 7", "{nope}"}},
		{"unknown source", "    - name: r\n      match: {source: ghosts}\n      emitters: [{kind: log}]\n", []string{"guests.rules[0].match.source", "line 5", "ghosts"}},
		{"bad glob", "    - name: r\n      match: {name: '[x'}\n      emitters: [{kind: log}]\n", []string{"guests.rules[0].match.name", "line 5"}},
		{"no emitters", "    - name: r\n", []string{"guests.rules[0].emitters", "line 5"}},
		{"duplicate rule", "    - {name: r, emitters: [{kind: log}]}\n    - {name: r, emitters: [{kind: log}]}\n", []string{"guests.rules[1].name", "line 6"}},
		{"unknown field", "    - name: r\n      emitter: [{kind: log}]\n", []string{"line 6", `unknown field "emitter"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadYAML(t, base+tc.rules)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBadGuestSourceIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{"{name: a, type: files, pattern: /g/c.log}", "guests.sources[0].pattern: line 3: pattern \"/g/c.log\" must contain {guest} exactly once"},
		{"{name: a, type: nfs}", "guests.sources[0].type: line 3: must be one of"},
		{"{name: '', type: static}", "guests.sources[0].name: line 3"},
		{"{name: a, type: pidfile, pattern: 'run/{guest}.pid'}", "must be an absolute path"},
		{"{name: a, type: plugin}", "guests.sources[0].kind: line 3: must name the plugin"},
		{"{name: a, type: plugin, kind: k, pattern: '/g/{guest}'}", "guests.sources[0].pattern: line 3: a plugin source has no pattern"},
		{"{name: a, type: files, pattern: '/g/{guest}', kind: k}", "guests.sources[0].kind: line 3: kind and config are for type plugin only"},
	} {
		_, err := loadYAML(t, "guests:\n  sources:\n    - "+tc.src+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestGuestRulesFromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SIDESTREAM_GUESTS_SOURCES": `[{"name":"s","type":"static","guests":[{"name":"a"}]}]`,
		"SIDESTREAM_GUESTS_RULES": `[{"name":"r","emitters":[{"kind":"time"}]}]`}
	cfg, err := Load(Sources{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Guests.Sources) != 1 || cfg.Guests.Rules[0].Emitters[0].Kind != "time" {
		t.Fatalf("guests %+v", cfg.Guests)
	}
}

func TestPluginGuestSourceLoads(t *testing.T) {
	t.Parallel()
	cfg, err := loadYAML(t, "guests:\n  sources:\n    - name: dirs\n      type: plugin\n      kind: dirguests\n      config: {dir: /srv/guests}\n")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Guests.Sources[0]
	if s.Kind != "dirguests" || s.Config["dir"] != "/srv/guests" || s.Line != 3 {
		t.Fatalf("source %+v", s)
	}
}

// A rule's emitter may bound its history (kept after its guest goes);
// fields left out keep the default, a negative bound is refused with its
// field and line.
func TestGuestRuleRetention(t *testing.T) {
	t.Parallel()
	base := "guests:\n  rules:\n    - name: r\n      emitters:\n        - kind: log\n"
	cfg, err := loadYAML(t, base+"          retention: {max_events: 50, max_age: 1h}\n        - {kind: time, id: t}\n")
	if err != nil {
		t.Fatal(err)
	}
	es := cfg.Guests.Rules[0].Rule().Emitters
	want := emitter.Retention{Persist: true, MaxEvents: 50, MaxAge: emitter.Duration(time.Hour)}
	if es[0].Retention == nil || *es[0].Retention != want {
		t.Fatalf("retention %+v, want %+v", es[0].Retention, want)
	}
	if es[1].Retention != nil {
		t.Fatalf("an emitter without retention got %+v, want the default (nil)", es[1].Retention)
	}
	cfg, err = loadYAML(t, base+"          retention: {persist: false}\n")
	if err != nil || !reflect.DeepEqual(cfg.Guests.Rules[0].Rule().Emitters[0].Retention,
		&emitter.Retention{MaxEvents: emitter.DefaultRetention.MaxEvents, MaxAge: emitter.DefaultRetention.MaxAge}) {
		t.Fatalf("persist false: %v %+v", err, cfg.Guests.Rules[0].Rule().Emitters[0].Retention)
	}
	for _, bad := range []string{"{max_events: -1}", "{max_age: -1h}", "{keep: 3}"} {
		_, err := loadYAML(t, base+"          retention: "+bad+"\n")
		if err == nil || !strings.Contains(err.Error(), "line ") ||
			(bad != "{keep: 3}" && !strings.Contains(err.Error(), "guests.rules[0].emitters[0].retention")) {
			t.Errorf("retention %s: %v, want a refusal naming field and line", bad, err)
		}
	}
}
