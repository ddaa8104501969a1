package guest

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// StreamName is the hub stream of guest lifecycle events.
const StreamName = "guests"

// StreamConfig is how the lifecycle stream keeps its history.
var StreamConfig = stream.Config{Persist: true, MaxEvents: 10000, MaxAge: 24 * time.Hour, Kind: "guests"}

// Lifecycle is the data of one event of the guests stream. Its type is
// the event's type: appeared, gone, attached, detached or attach_failed.
type Lifecycle struct {
	Guest   string            `json:"guest"`
	Source  string            `json:"source"`
	Labels  map[string]string `json:"labels,omitempty"`
	Emitter string            `json:"emitter,omitempty"`
	Kind    string            `json:"kind,omitempty"`
	Rule    string            `json:"rule,omitempty"`
	Error   string            `json:"error,omitempty"`
}

func (st *state) event(typ string, t *tracked, a *Attachment) {
	if st.s.opts.Events == nil {
		return
	}
	l := Lifecycle{Guest: t.g.Name, Source: t.g.Source, Labels: t.g.Labels}
	if a != nil {
		l.Emitter, l.Kind, l.Rule, l.Error = a.ID, a.Kind, a.Rule, a.Error
	}
	data, err := json.Marshal(l)
	if err != nil {
		return
	}
	st.pending = append(st.pending, event.Draft{Type: typ, Time: time.Now(), Data: data})
}

// flush publishes the step's events in one append (one commit).
func (st *state) flush() {
	if len(st.pending) == 0 {
		return
	}
	drafts := st.pending
	st.pending = nil
	ctx, cancel := context.WithTimeout(st.s.ctx, opTimeout)
	defer cancel()
	if _, err := st.s.opts.Events.Publish(ctx, drafts, nil); err != nil && st.s.ctx.Err() == nil {
		st.s.log.Error("publish guest events", "events", len(drafts), "err", err)
	}
}

// cleanupOnce stops, once every source has reported, the guest emitters
// that no present guest's rules want: their guest went away while the
// sidecar was down, or their rule was removed meanwhile.
func (st *state) cleanupOnce() {
	if st.cleaned {
		return
	}
	if !st.synced {
		for _, rs := range st.sources {
			if !rs.reported {
				return
			}
		}
		if len(st.sources) == 0 && len(st.rules) == 0 {
			return // not configured yet
		}
	}
	st.cleaned = true
	claimed := map[string]bool{}
	for _, t := range st.guests {
		for id, a := range t.attached {
			if a.State != AttachStopped {
				claimed[id] = true
			}
		}
	}
	ctx, cancel := context.WithTimeout(st.s.ctx, opTimeout)
	defer cancel()
	specs, _ := st.s.em.List(ctx, emitter.Filter{}, "", 0)
	for _, sp := range specs {
		if _, ours := sp.Labels[LabelGuest]; !ours || sp.Stopped || claimed[sp.ID] {
			continue
		}
		if err := st.s.em.Stop(ctx, sp.ID); err != nil {
			st.s.log.Warn("stop orphaned guest emitter", "emitter", sp.ID, "err", err)
			continue
		}
		st.s.log.Info("stopped the emitter of a guest no longer present", "emitter", sp.ID, "guest", sp.Labels[LabelGuest])
	}
}

// views copies the state for readers.
func (st *state) views() []View {
	out := make([]View, 0, len(st.guests))
	for _, t := range st.guests {
		v := View{Guest: t.g, State: t.state}
		for _, a := range t.attached {
			v.Emitters = append(v.Emitters, *a)
		}
		sortAttachments(v.Emitters)
		out = append(out, v)
	}
	sortViews(out)
	return out
}
