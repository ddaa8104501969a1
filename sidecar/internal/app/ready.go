package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/internal/pluginhost"
)

// ready answers /readyz: the node can serve when its store can (the
// journal applies) and every plugin that serves a stored emitter runs.
// Otherwise an orchestrator should take the node out until it recovers;
// /readyz turns ready again by itself once the plugin is back or the
// store applies again. Plugins no emitter uses do not count.
func (s *system) ready(ctx context.Context) error {
	if err := s.store.Ready(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	specs, _ := s.mgr.List(ctx, emitter.Filter{}, "", 0)
	needed := make(map[string]bool, len(specs))
	for _, sp := range specs {
		needed[sp.Kind] = true
	}
	var down []string
	for _, p := range s.host.Plugins() {
		if needed[p.Name] && p.State != pluginhost.StateRunning {
			down = append(down, fmt.Sprintf("%s is %s", p.Name, p.State))
		}
	}
	if len(down) > 0 {
		slices.Sort(down)
		return fmt.Errorf("plugins serving stored emitters are down (%v): %w", down, emitter.ErrUnavailable)
	}
	return nil
}
