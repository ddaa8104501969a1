package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/guest"
)

// Guests says where the node's guests are found and which emitters they
// get. Sources and rules are lists of objects: set in the file (or, as
// YAML or JSON text, in their variable), never by a flag.
type Guests struct {
	Sources []GuestSource `yaml:"sources" unset:"none" example:"[{name: vms, type: files, pattern: '/var/log/guests/{guest}/console.log', labels: {tier: vm}}]" help:"where guests are found: each source has a name and a type: static, files, cgroup, pidfile, or plugin (a plugin that reports guests)"`
	Rules   []GuestRule   `yaml:"rules" unset:"no emitters are attached to guests" example:"[{name: console, match: {source: vms}, emitters: [{kind: log, config: {path: '{path}'}}]}]" help:"which emitters guests get: the guests a rule matches get its emitters, whose id, config and labels may use {guest}, {path}, {pid}, {cgroup}, {source}, {rule} and {labels.KEY}; applied again on SIGHUP"`
}

// GuestSource is one configured guest source.
type GuestSource struct {
	Name string `yaml:"name" help:"unique name of the source, shown on its guests"`
	Type string `yaml:"type" help:"static (the guests listed), files (a path pattern, watched), cgroup (processes whose cgroup path matches), pidfile (a pid file per guest) or plugin (the guests a plugin reports)"`
	// Guests are a static source's guests.
	Guests []StaticGuest `yaml:"guests,omitempty" help:"static: the guests"`
	// Pattern holds {guest} once: a path (files, pidfile) or a cgroup
	// path (cgroup).
	Pattern    string            `yaml:"pattern,omitempty" help:"files and pidfile: a path with {guest} once, e.g. /var/log/guests/{guest}/console.log; cgroup: a cgroup path with {guest} once, e.g. /machine.slice/machine-{guest}.scope"`
	Controller string            `yaml:"controller,omitempty" help:"cgroup: the v1 hierarchy whose path is matched where there is no v2 path (default: any)"`
	Labels     map[string]string `yaml:"labels,omitempty" help:"labels put on every guest of the source"`
	Every      Duration          `yaml:"every,omitempty" help:"rescan period: files 10s by default (a fallback to inotify), cgroup and pidfile 500ms (they poll)"`
	// Kind and Config are a plugin source's: the plugin's name and its
	// config, checked against the plugin's schema when the sidecar starts
	// or reloads (the plugin must be running to tell).
	Kind   string         `yaml:"kind,omitempty" help:"plugin: the name of the plugin that reports the guests (as in the plugin directory's manifest)"`
	Config map[string]any `yaml:"config,omitempty" help:"plugin: the source's config, checked against the plugin's schema"`
	// Line is where the source is declared, for errors.
	Line int `yaml:"-"`
}

// StaticGuest is one guest of a static source.
type StaticGuest struct {
	Name   string            `yaml:"name" help:"the guest's name"`
	Labels map[string]string `yaml:"labels,omitempty" help:"the guest's labels"`
}

// GuestRule attaches emitters to the guests it matches.
type GuestRule struct {
	Name     string         `yaml:"name" help:"unique name of the rule (in the default emitter id {guest}.{rule})"`
	Match    GuestMatch     `yaml:"match,omitempty" help:"which guests the rule applies to (empty: every guest)"`
	Emitters []GuestEmitter `yaml:"emitters" help:"the emitters each matching guest gets"`
	Line     int            `yaml:"-"`
}

// GuestMatch selects guests; empty fields match all.
type GuestMatch struct {
	Name   string            `yaml:"name,omitempty" help:"glob over the guest's name (e.g. vm-*)"`
	Source string            `yaml:"source,omitempty" help:"the name of the source the guest comes from"`
	Labels map[string]string `yaml:"labels,omitempty" help:"labels the guest must carry with these values"`
}

// GuestEmitter is one emitter of a rule.
type GuestEmitter struct {
	ID     string            `yaml:"id,omitempty" help:"emitter id (default {guest}.{rule}, plus .{kind} when the rule has several emitters)"`
	Kind   string            `yaml:"kind" help:"emitter kind (a built-in or a plugin's)"`
	Config map[string]any    `yaml:"config,omitempty" help:"the emitter's config; its strings may use the placeholders"`
	Labels map[string]string `yaml:"labels,omitempty" help:"extra labels of the emitter; values may use the placeholders"`
	// Retention bounds the emitter's history, kept after its guest goes.
	Retention *GuestRetention `yaml:"retention,omitempty" help:"history kept, also after the guest goes (set when the emitter is first made); fields left out keep the default: persist, 10000 events, 24h"`
	Line      int             `yaml:"-"`
}

// GuestRetention is a rule emitter's history policy; fields left out keep
// the default (emitter.DefaultRetention).
type GuestRetention struct {
	Persist   *bool    `yaml:"persist,omitempty" help:"keep history in the store (false: only the in-memory ring)"`
	MaxEvents *int     `yaml:"max_events,omitempty" help:"events kept, 0 for no bound"`
	MaxAge    Duration `yaml:"max_age,omitempty" help:"how long events are kept"`
}

// UnmarshalYAML refuses unknown keys.
func (r *GuestRetention) UnmarshalYAML(n *yaml.Node) error {
	type plain GuestRetention
	return decodeStrict(n, (*plain)(r))
}

// retention is r over the default, or nil (the default) when r is.
func (r *GuestRetention) retention() *emitter.Retention {
	if r == nil {
		return nil
	}
	out := emitter.DefaultRetention
	if r.Persist != nil {
		out.Persist = *r.Persist
	}
	if r.MaxEvents != nil {
		out.MaxEvents = *r.MaxEvents
	}
	if r.MaxAge != 0 {
		out.MaxAge = emitter.Duration(r.MaxAge)
	}
	return &out
}

// UnmarshalYAML keeps the line and refuses unknown keys (a custom
// unmarshaler does not inherit the file decoder's strictness).
func (s *GuestSource) UnmarshalYAML(n *yaml.Node) error {
	type plain GuestSource
	s.Line = n.Line
	return decodeStrict(n, (*plain)(s))
}

// UnmarshalYAML keeps the line and refuses unknown keys.
func (g *StaticGuest) UnmarshalYAML(n *yaml.Node) error {
	type plain StaticGuest
	return decodeStrict(n, (*plain)(g))
}

// UnmarshalYAML keeps the line and refuses unknown keys.
func (r *GuestRule) UnmarshalYAML(n *yaml.Node) error {
	type plain GuestRule
	r.Line = n.Line
	return decodeStrict(n, (*plain)(r))
}

// UnmarshalYAML refuses unknown keys.
func (m *GuestMatch) UnmarshalYAML(n *yaml.Node) error {
	type plain GuestMatch
	return decodeStrict(n, (*plain)(m))
}

// UnmarshalYAML keeps the line and refuses unknown keys.
func (e *GuestEmitter) UnmarshalYAML(n *yaml.Node) error {
	type plain GuestEmitter
	e.Line = n.Line
	return decodeStrict(n, (*plain)(e))
}

// decodeStrict decodes a mapping into v after checking every key is one
// of v's yaml fields.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of keys", n.Line)
	}
	t := reflect.TypeOf(v).Elem()
	var known []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			known = append(known, name)
		}
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(known, k) {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", n.Content[i].Line, k, strings.Join(known, ", "))
		}
	}
	return n.Decode(v)
}

// Source types.
var guestSourceTypes = []string{"static", "files", "cgroup", "pidfile", "plugin"}

// validate checks sources and rules; every error names its field and the
// line it is on.
func (g Guests) validate() []error {
	var errs []error
	bad := func(field string, line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, &FieldError{field, msg})
	}
	names := map[string]bool{}
	for i, s := range g.Sources {
		f := fmt.Sprintf("guests.sources[%d]", i)
		if s.Name == "" {
			bad(f+".name", s.Line, "must not be empty")
		} else if names[s.Name] {
			bad(f+".name", s.Line, "%q is the name of an earlier source", s.Name)
		}
		names[s.Name] = true
		errs = append(errs, s.validate(f, bad)...)
	}
	rules := map[string]bool{}
	for i, r := range g.Rules {
		f := fmt.Sprintf("guests.rules[%d]", i)
		if rules[r.Name] && r.Name != "" {
			bad(f+".name", r.Line, "%q is the name of an earlier rule", r.Name)
		}
		rules[r.Name] = true
		if r.Match.Source != "" && !names[r.Match.Source] {
			bad(f+".match.source", r.Line, "no source is named %q", r.Match.Source)
		}
		for _, fe := range r.Rule().Check() {
			bad(f+"."+fe.Field, fe.Line, "%v", fe.Err)
		}
		for j, e := range r.Emitters {
			if rt := e.Retention; rt != nil && ((rt.MaxEvents != nil && *rt.MaxEvents < 0) || rt.MaxAge < 0) {
				bad(fmt.Sprintf("%s.emitters[%d].retention", f, j), e.Line, "max_events and max_age must not be negative")
			}
		}
	}
	return errs
}

func (s GuestSource) validate(f string, bad func(string, int, string, ...any)) []error {
	if !slices.Contains(guestSourceTypes, s.Type) {
		bad(f+".type", s.Line, "must be one of %s, not %q", strings.Join(guestSourceTypes, ", "), s.Type)
		return nil
	}
	if s.Type == "plugin" {
		if s.Kind == "" {
			bad(f+".kind", s.Line, "must name the plugin that reports the guests")
		}
		if s.Pattern != "" {
			bad(f+".pattern", s.Line, "a plugin source has no pattern: give it in config, as the plugin's schema says")
		}
		return nil
	}
	if s.Kind != "" || s.Config != nil {
		bad(f+".kind", s.Line, "kind and config are for type plugin only")
	}
	if s.Type == "static" {
		for j, g := range s.Guests {
			if g.Name == "" {
				bad(fmt.Sprintf("%s.guests[%d].name", f, j), s.Line, "must not be empty")
			}
		}
		return nil
	}
	if _, err := guest.ParsePattern(s.Pattern); err != nil {
		bad(f+".pattern", s.Line, "%v", err)
	} else if s.Type != "cgroup" && !strings.HasPrefix(s.Pattern, "/") {
		bad(f+".pattern", s.Line, "%q must be an absolute path", s.Pattern)
	}
	if s.Every < 0 || (s.Every > 0 && time.Duration(s.Every) < 10*time.Millisecond) {
		bad(f+".every", s.Line, "must be at least 10ms")
	}
	return nil
}

// Rule is the rule as core/guest applies it.
func (r GuestRule) Rule() guest.Rule {
	out := guest.Rule{Name: r.Name, Line: r.Line,
		Selector: guest.Selector{Name: r.Match.Name, Source: r.Match.Source, Labels: r.Match.Labels}}
	for _, e := range r.Emitters {
		var cfg any
		if e.Config != nil {
			cfg = map[string]any(e.Config)
		}
		out.Emitters = append(out.Emitters, guest.EmitterTemplate{ID: e.ID, Kind: e.Kind, Config: cfg, Labels: e.Labels,
			Retention: e.Retention.retention(), Line: e.Line})
	}
	return out
}

// Key identifies a source's configuration: a reload restarts a source
// only when it changed.
func (s GuestSource) Key() string {
	s.Line = 0
	b, _ := json.Marshal(s)
	return string(b)
}

var errObjects = errors.New("a list of objects: set it in the config file, or give YAML or JSON text")
