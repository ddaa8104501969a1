// Package guest is the node's guest instances (VMs, containers, sandboxes)
// as sidestream sees them: sources report which guests exist, attach
// rules say which emitters each guest gets, and the Service keeps the
// emitters in step with the guests (started when a guest appears, stopped
// with their history kept when it goes) and tells of every change on one
// lifecycle stream. Sources are adapters (sidecar/internal/guestsource);
// this package declares what it needs of them and of the emitter manager.
package guest

import (
	"context"
	"maps"
	"slices"
	"strings"
)

// State of a guest.
const (
	StatePresent = "present"
	StateGone    = "gone"
)

// Guest is one guest instance as a source reports it.
type Guest struct {
	// Name identifies the guest within its source.
	Name string
	// Source is the name of the source that reports it (set by the
	// Service, not by the source).
	Source string
	// Labels come from the source's configuration and what it found.
	Labels map[string]string
	// Path is the file the guest was found by (files, pid files).
	Path string
	// PIDs are the guest's processes, lowest first (process sources).
	PIDs []int
	// Cgroup is the guest's cgroup path (cgroup source).
	Cgroup string
}

// PID is the guest's main process (the lowest pid), or 0.
func (g Guest) PID() int {
	if len(g.PIDs) == 0 {
		return 0
	}
	return g.PIDs[0]
}

// same reports whether g and o describe the guest alike (what a template
// can read): a change makes its emitters re-rendered.
func (g Guest) same(o Guest) bool {
	return g.Name == o.Name && g.Source == o.Source && g.Path == o.Path && g.Cgroup == o.Cgroup &&
		g.PID() == o.PID() && maps.Equal(g.Labels, o.Labels)
}

// Source reports a set of guests. Run calls report with the full set each
// time it may have changed (at least once, soon after it starts) until
// ctx is done; report must not be called after Run returned. A source
// that cannot watch returns an error at once.
type Source interface {
	Run(ctx context.Context, report func([]Guest)) error
}

func sortAttachments(as []Attachment) {
	slices.SortFunc(as, func(a, b Attachment) int { return strings.Compare(a.ID, b.ID) })
}

func sortViews(vs []View) {
	slices.SortFunc(vs, func(a, b View) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}
