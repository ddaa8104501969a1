// Package plugin is the guest source of a plugin that reports guests
// (libvirt, containerd, kubelet, Firecracker... each a plugin built with
// the SDK): it runs the plugin's watch through the plugin host and hands
// each whole set it reports to the guest service. While the plugin is
// down (crashed, restarting with backoff) nothing is reported, so its
// guests stay as last reported; the first set after the restart
// reconciles them.
package plugin

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/sidestream/sidestream/core/guest"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// Watcher is what the source needs of the plugin host
// (pluginhost.Host implements it).
type Watcher interface {
	WatchGuests(ctx context.Context, name string, config json.RawMessage, report func([]sdk.Guest)) error
}

// Source is one configured plugin guest source.
type Source struct {
	Host Watcher
	// Kind names the plugin.
	Kind string
	// Config is the source's config, normalized by the plugin.
	Config json.RawMessage
	// Labels are put on every guest, under the plugin's own labels.
	Labels map[string]string
}

// Run implements guest.Source.
func (s Source) Run(ctx context.Context, report func([]guest.Guest)) error {
	return s.Host.WatchGuests(ctx, s.Kind, s.Config, func(gs []sdk.Guest) {
		report(s.guests(gs))
	})
}

// guests converts a reported set, PIDs lowest first as guest.Guest wants
// them; a guest reported twice is taken once (the first).
func (s Source) guests(gs []sdk.Guest) []guest.Guest {
	out := make([]guest.Guest, 0, len(gs))
	seen := make(map[string]bool, len(gs))
	for _, g := range gs {
		if g.Name == "" || seen[g.Name] {
			continue
		}
		seen[g.Name] = true
		labels := maps.Clone(s.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, g.Labels)
		pids := slices.Clone(g.PIDs)
		slices.Sort(pids)
		out = append(out, guest.Guest{Name: g.Name, Labels: labels, Path: g.Path, PIDs: pids, Cgroup: g.Cgroup})
	}
	return out
}
