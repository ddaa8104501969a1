package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/sidestream/sidestream/core/emitter"
)

// Labels the Service puts on every emitter it attaches, so it finds its
// emitters again after a restart and users can filter them.
const (
	LabelGuest  = "sidestream.guest"
	LabelSource = "sidestream.guest_source"
	LabelRule   = "sidestream.guest_rule"
)

// Rule attaches emitters to the guests its selector matches.
type Rule struct {
	Name     string
	Selector Selector
	Emitters []EmitterTemplate
	// Line is where the rule is declared in the config file (0: unknown),
	// so errors can point at it.
	Line int
}

// Selector matches guests; empty fields match every guest.
type Selector struct {
	// Name is a glob over the guest's name (path.Match syntax).
	Name string
	// Source is the name of the source the guest must come from.
	Source string
	// Labels must all be present with these values.
	Labels map[string]string
}

// EmitterTemplate is one emitter a rule attaches. Its strings may hold
// placeholders ({guest}, {path}, {pid}, {cgroup}, {source}, {rule},
// {labels.KEY}).
type EmitterTemplate struct {
	// ID of the emitter; empty means {guest}.{rule}, with .{kind} added
	// when the rule has more than one emitter.
	ID   string
	Kind string
	// Config is the decoded YAML or JSON of the emitter's config.
	Config    any
	Labels    map[string]string
	Retention *emitter.Retention
	Line      int
}

// Matches reports whether s selects g.
func (s Selector) Matches(g Guest) bool {
	if s.Source != "" && s.Source != g.Source {
		return false
	}
	if s.Name != "" {
		if ok, _ := path.Match(s.Name, g.Name); !ok {
			return false
		}
	}
	for k, v := range s.Labels {
		if got, ok := g.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// FieldError is an invalid field of a rule, with the config line it is on.
type FieldError struct {
	Field string
	Line  int
	Err   error
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %v", e.Field, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Check validates a rule's own fields (field names are relative to the
// rule, e.g. "emitters[0].kind").
func (r Rule) Check() []*FieldError {
	var errs []*FieldError
	bad := func(field string, line int, err error) { errs = append(errs, &FieldError{field, line, err}) }
	if r.Name == "" {
		bad("name", r.Line, errors.New("must not be empty"))
	} else if idSafe(r.Name) != r.Name {
		bad("name", r.Line, fmt.Errorf("%q may hold only letters, digits, _ . and -", r.Name))
	}
	if r.Selector.Name != "" {
		if _, err := path.Match(r.Selector.Name, ""); err != nil {
			bad("match.name", r.Line, fmt.Errorf("bad glob %q: %w", r.Selector.Name, err))
		}
	}
	if len(r.Emitters) == 0 {
		bad("emitters", r.Line, errors.New("at least one emitter is required"))
	}
	kinds := map[string]bool{}
	for i, e := range r.Emitters {
		f := fmt.Sprintf("emitters[%d]", i)
		if e.Kind == "" {
			bad(f+".kind", e.Line, errors.New("is required"))
		}
		if e.ID == "" && kinds[e.Kind] {
			bad(f+".id", e.Line, fmt.Errorf("two %s emitters in one rule need an id each", e.Kind))
		}
		kinds[e.Kind] = true
		if err := CheckTemplate(e.ID); err != nil {
			bad(f+".id", e.Line, err)
		}
		if err := checkValue(e.Config); err != nil {
			bad(f+".config", e.Line, err)
		}
		for k, v := range e.Labels {
			if err := CheckTemplate(v); err != nil {
				bad(f+".labels."+k, e.Line, err)
			}
		}
	}
	return errs
}

// Render is the emitters rule r attaches to guest g.
func (r Rule) Render(g Guest) ([]emitter.CreateRequest, error) {
	v := vars{g: g, rule: r.Name}
	out := make([]emitter.CreateRequest, 0, len(r.Emitters))
	for _, e := range r.Emitters {
		id := e.ID
		if id == "" {
			id = "{guest}.{rule}"
			if len(r.Emitters) > 1 {
				id += "." + e.Kind
			}
		}
		id = vars{g: Guest{Name: idSafe(g.Name), Source: g.Source, Path: g.Path, PIDs: g.PIDs, Cgroup: g.Cgroup, Labels: g.Labels}, rule: r.Name}.expand(id)
		cfg := []byte("{}")
		if e.Config != nil {
			b, err := json.Marshal(v.renderValue(e.Config))
			if err != nil {
				return nil, fmt.Errorf("rule %s: config of %s: %w", r.Name, e.Kind, err)
			}
			cfg = b
		}
		labels := map[string]string{LabelGuest: g.Name, LabelSource: g.Source, LabelRule: r.Name}
		for k, val := range e.Labels {
			labels[k] = v.expand(val)
		}
		out = append(out, emitter.CreateRequest{ID: id, Kind: e.Kind, Config: cfg, Labels: labels, Retention: e.Retention})
	}
	return out, nil
}
