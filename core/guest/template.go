package guest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The placeholders a rule's templates may use. {labels.KEY} reads one of
// the guest's labels.
var placeholderRE = regexp.MustCompile(`\{([a-z_]+(?:\.[A-Za-z0-9_./-]+)?)\}`)

var plainPlaceholders = map[string]bool{"guest": true, "source": true, "path": true, "pid": true, "cgroup": true, "rule": true}

// CheckTemplate reports the first placeholder of s that no guest can fill.
func CheckTemplate(s string) error {
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		name := m[1]
		if plainPlaceholders[name] || strings.HasPrefix(name, "labels.") {
			continue
		}
		return fmt.Errorf("unknown placeholder {%s} (use {guest}, {source}, {path}, {pid}, {cgroup}, {rule} or {labels.KEY})", name)
	}
	return nil
}

// vars are the values of one guest's placeholders.
type vars struct {
	g    Guest
	rule string
}

func (v vars) value(name string) string {
	switch name {
	case "guest":
		return v.g.Name
	case "source":
		return v.g.Source
	case "path":
		return v.g.Path
	case "pid":
		if p := v.g.PID(); p > 0 {
			return strconv.Itoa(p)
		}
		return ""
	case "cgroup":
		return v.g.Cgroup
	case "rule":
		return v.rule
	}
	if k, ok := strings.CutPrefix(name, "labels."); ok {
		return v.g.Labels[k]
	}
	return ""
}

// expand fills every placeholder of s.
func (v vars) expand(s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		return v.value(m[1 : len(m)-1])
	})
}

// renderValue fills the placeholders of every string in a decoded YAML or
// JSON value. A string that is only "{pid}" becomes a number, so a config
// field declared as an integer gets one.
func (v vars) renderValue(x any) any {
	switch t := x.(type) {
	case string:
		if t == "{pid}" {
			return v.g.PID()
		}
		return v.expand(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = v.renderValue(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = v.renderValue(e)
		}
		return out
	}
	return x
}

// checkValue checks the placeholders of every string in a decoded value.
func checkValue(x any) error {
	switch t := x.(type) {
	case string:
		return CheckTemplate(t)
	case map[string]any:
		for _, e := range t {
			if err := checkValue(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := checkValue(e); err != nil {
				return err
			}
		}
	}
	return nil
}

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// idSafe makes a guest's name usable inside an emitter id.
func idSafe(s string) string { return idUnsafe.ReplaceAllString(s, "_") }
