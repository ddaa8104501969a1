package guest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/core/emitter"
)

func TestSelectorMatches(t *testing.T) {
	t.Parallel()
	g := Guest{Name: "vm-17", Source: "vms", Labels: map[string]string{"tier": "vm", "zone": "a"}}
	for _, tc := range []struct {
		name string
		sel  Selector
		want bool
	}{
		{"empty matches all", Selector{}, true},
		{"name glob", Selector{Name: "vm-*"}, true},
		{"name glob misses", Selector{Name: "ct-*"}, false},
		{"name glob is whole-name", Selector{Name: "vm-1"}, false},
		{"character class", Selector{Name: "vm-1[0-9]"}, true},
		{"source", Selector{Source: "vms"}, true},
		{"other source", Selector{Source: "cts"}, false},
		{"labels all present", Selector{Labels: map[string]string{"tier": "vm", "zone": "a"}}, true},
		{"label of another value", Selector{Labels: map[string]string{"tier": "ct"}}, false},
		{"label absent", Selector{Labels: map[string]string{"gpu": ""}}, false},
		{"glob and labels", Selector{Name: "vm-*", Labels: map[string]string{"zone": "a"}}, true},
		{"glob matches, labels do not", Selector{Name: "vm-*", Labels: map[string]string{"zone": "b"}}, false},
	} {
		if got := tc.sel.Matches(g); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPatternMatchesOneSegment(t *testing.T) {
	t.Parallel()
	p, err := ParsePattern("/var/log/guests/{guest}/*.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, name string
		ok         bool
	}{
		{"/var/log/guests/vm-a/console.log", "vm-a", true},
		{"/var/log/guests/vm-a/sub/console.log", "", false},
		{"/var/log/guests//console.log", "", false},
		{"/var/log/other/vm-a/console.log", "", false},
		{"/var/log/guests/vm.a/x.log", "vm.a", true},
	} {
		name, ok := p.Match(tc.path)
		if ok != tc.ok || name != tc.name {
			t.Errorf("Match(%q) = %q, %v; want %q, %v", tc.path, name, ok, tc.name, tc.ok)
		}
	}
	if got := p.Glob(); got != "/var/log/guests/*/*.log" {
		t.Errorf("Glob = %q", got)
	}
	for _, bad := range []string{"/var/log/x.log", "/{guest}/{guest}", "/g/[{guest}"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted it", bad)
		}
	}
}

// A rule's templates are filled with what the source reported of the
// guest: {guest}, {path}, {pid} (a number where it is the whole value),
// {cgroup}, {source}, {rule} and {labels.KEY}.
func TestRuleRendersTemplates(t *testing.T) {
	t.Parallel()
	g := Guest{Name: "vm/17", Source: "vms", Path: "/g/vm-17/console.log", PIDs: []int{4242, 4300},
		Cgroup: "/machine.slice/vm-17.scope", Labels: map[string]string{"tier": "gold", "zone": "a"}}
	r := Rule{Name: "watch", Emitters: []EmitterTemplate{
		{Kind: "log", Config: map[string]any{
			"path":  "{path}",
			"title": "{guest} on {source} ({labels.tier}, {labels.nope})",
			"tags":  []any{"{labels.zone}", "{rule}", "pid {pid}"},
		}, Labels: map[string]string{"tier": "{labels.tier}"}},
		{Kind: "procstat", ID: "{guest}-{labels.zone}-stats", Config: map[string]any{"pid": "{pid}", "cgroup": "{cgroup}"},
			Retention: &emitter.Retention{Persist: true, MaxEvents: 50}},
	}}
	if errs := r.Check(); len(errs) != 0 {
		t.Fatalf("Check: %v", errs)
	}
	reqs, err := r.Render(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 {
		t.Fatalf("%d emitters, want 2", len(reqs))
	}
	logReq, stats := reqs[0], reqs[1]
	// Two emitters of one rule: the default id is {guest}.{rule}.{kind},
	// with the guest's name made safe for an id.
	if logReq.ID != "vm_17.watch.log" || stats.ID != "vm_17-a-stats" {
		t.Errorf("ids %q, %q", logReq.ID, stats.ID)
	}
	var cfg struct {
		Path, Title string
		Tags        []string
	}
	if err := json.Unmarshal(logReq.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Path != g.Path || cfg.Title != "vm/17 on vms (gold, )" || strings.Join(cfg.Tags, "|") != "a|watch|pid 4242" {
		t.Errorf("log config %s", logReq.Config)
	}
	if logReq.Retention != nil || stats.Retention == nil || stats.Retention.MaxEvents != 50 {
		t.Errorf("retention %+v, %+v: want the default, then the rule's", logReq.Retention, stats.Retention)
	}
	if want := `{"cgroup":"/machine.slice/vm-17.scope","pid":4242}`; string(stats.Config) != want {
		t.Errorf("procstat config %s, want %s", stats.Config, want)
	}
	if l := logReq.Labels; l["tier"] != "gold" || l[LabelGuest] != "vm/17" || l[LabelSource] != "vms" || l[LabelRule] != "watch" {
		t.Errorf("labels %v", l)
	}
}

func TestRuleCheckNamesTheField(t *testing.T) {
	t.Parallel()
	r := Rule{Name: "bad name", Line: 3, Selector: Selector{Name: "[x"}, Emitters: []EmitterTemplate{
		{Line: 5},
		{Kind: "log", Line: 6, Config: map[string]any{"path": "{paht}"}},
		{Kind: "log", Line: 7, Labels: map[string]string{"k": "{labels}"}},
	}}
	got := map[string]int{}
	for _, fe := range r.Check() {
		got[fe.Field] = fe.Line
	}
	want := map[string]int{"name": 3, "match.name": 3, "emitters[0].kind": 5, "emitters[1].config": 6,
		"emitters[2].id": 7, "emitters[2].labels.k": 7}
	for f, line := range want {
		if l, ok := got[f]; !ok || l != line {
			t.Errorf("field %s: line %d (reported %v), want line %d", f, l, ok, line)
		}
	}
	if len(got) != len(want) {
		t.Errorf("errors on %v, want %v", got, want)
	}
}
