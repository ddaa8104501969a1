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
// store applies again. Plugins no emitter uses do not count. In cluster
// mode the node must also be connected to NATS: without it, it can serve
// neither other nodes' streams nor the tracker and queues.
func (s *system) ready(ctx context.Context) error {
	if err := s.store.Ready(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if c := s.cluster; c != nil && !c.nc.IsConnected() {
		return fmt.Errorf("not connected to the cluster's NATS (%s): %w", c.nc.Status(), emitter.ErrUnavailable)
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
