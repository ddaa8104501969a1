package httpapi

import (
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/api"
)

// pluginStates maps each local plugin (named as its kind) to its state.
func (s *Server) pluginStates() map[string]string {
	out := map[string]string{}
	if s.d.Plugins == nil {
		return out
	}
	for _, p := range s.d.Plugins.Plugins() {
		out[p.Name] = p.State
	}
	return out
}

// emitterLive is an emitter as GET shows it: the spec with its state and
// its stream's recent activity, both as this node sees them. It only
// peeks at streams already open, so listing neither opens a stream nor
// keeps a cluster mirror alive.
func (s *Server) emitterLive(spec emitter.Spec, plugins map[string]string, now time.Time) api.Emitter {
	out := s.emitterOut(spec)
	if s.d.Streams == nil {
		return out
	}
	st, ok := s.d.Streams.Peek(spec.ID)
	if !ok {
		return out
	}
	a := st.Activity(now, api.ActivityWindow)
	out.Activity = &api.Activity{Head: a.Head, LastEventAt: a.Last, EventsPerSec: a.PerSec, Subscribers: st.Subscribers()}
	switch {
	case st.External() && st.Offline():
		out.State = api.StateOffline
	case st.External():
		out.State = api.StateRunning // its node runs it; the mirror is live
	case plugins[spec.Kind] == "" || plugins[spec.Kind] == api.StateRunning:
		out.State = api.StateRunning
	default:
		out.State = plugins[spec.Kind]
	}
	return out
}
