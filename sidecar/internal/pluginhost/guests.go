package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/sidestream/sidestream/core/emitter"
	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// ErrNoGuestSource means the named plugin reports no guests (it is an
// emitter kind only, or not installed).
var ErrNoGuestSource = errors.New("no plugin reports guests under that name")

// hasRole reports whether the plugin described by d offers role. A plugin
// built before roles existed lists none and is an emitter.
func hasRole(d *pluginpb.DescribeResponse, role string) bool {
	roles := d.GetRoles()
	if len(roles) == 0 {
		return role == sdk.RoleEmitter
	}
	return slices.Contains(roles, role)
}

// servesEmitter says whether the plugin is an emitter kind, once it has
// described itself (true before, so a starting plugin is not refused).
func (k *kindProc) servesEmitter() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.roles == nil || hasRole(&pluginpb.DescribeResponse{Roles: k.roles}, sdk.RoleEmitter)
}

// guestOnly is the error for the emitter calls on a guest-only plugin.
func (k *kindProc) guestOnly() error {
	return fmt.Errorf("kind %q: the plugin reports guests and serves no emitter: %w", k.src.Name, emitter.ErrUnknownKind)
}

// guestKind returns the plugin that serves name as a guest source, with
// its running process.
func (h *Host) guestKind(ctx context.Context, name string) (*kindProc, *proc, error) {
	k, ok := h.kinds[name]
	if !ok {
		return nil, nil, fmt.Errorf("plugin %q: %w", name, ErrNoGuestSource)
	}
	p, err := k.ready(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("guest source %s: %w", name, err)
	}
	if !hasRole(p.desc, sdk.RoleGuestSource) {
		return nil, nil, fmt.Errorf("plugin %q serves an emitter kind only: %w", name, ErrNoGuestSource)
	}
	return k, p, nil
}

// GuestSourceSchema is the JSON Schema of the guest source config of the
// plugin named name.
func (h *Host) GuestSourceSchema(ctx context.Context, name string) (json.RawMessage, error) {
	_, p, err := h.guestKind(ctx, name)
	if err != nil {
		return nil, err
	}
	return p.desc.GetGuestSourceSchema(), nil
}

// ValidateGuestSource asks the plugin to check and normalize a guest
// source config; field errors come back as *emitter.ValidationError.
func (h *Host) ValidateGuestSource(ctx context.Context, name string, config json.RawMessage) (json.RawMessage, error) {
	_, p, err := h.guestKind(ctx, name)
	if err != nil {
		return nil, err
	}
	resp, err := p.rpc.ValidateGuestSource(ctx, &pluginpb.ValidateRequest{Config: config})
	if err != nil {
		return nil, fmt.Errorf("validate guest source %s: %w", name, rpcErr(err))
	}
	if len(resp.GetErrors()) > 0 {
		ve := &emitter.ValidationError{}
		for _, f := range resp.GetErrors() {
			ve.Fields = append(ve.Fields, emitter.FieldError{Field: f.GetField(), Message: f.GetMessage()})
		}
		return nil, ve
	}
	return resp.GetNormalizedConfig(), nil
}

// WatchGuests runs the plugin's guest source on config (normalized by
// ValidateGuestSource) and calls report with each whole set of guests it
// reports, until ctx ends or the host closes (then it returns nil).
//
// A plugin that crashes or hangs is restarted by its supervisor with
// backoff, as for emitters; a watch that fails while the process lives is
// retried with the same backoff. Meanwhile report is not called, so the
// guests of the last report stay present (no storm of "gone" and
// re-attached emitters for a plugin restart); the first report of the
// new watch is the whole set again and reconciles whatever changed while
// the plugin was down. It fails at once only when the plugin, once
// running, turns out to report no guests.
func (h *Host) WatchGuests(ctx context.Context, name string, config json.RawMessage, report func([]sdk.Guest)) error {
	k, ok := h.kinds[name]
	if !ok {
		return fmt.Errorf("plugin %q: %w", name, ErrNoGuestSource)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.ctx, cancel)()
	log := h.log.With("plugin", name)
	fails := 0
	for {
		p, err := k.waitRunning(ctx)
		if err != nil {
			return nil // ctx ended
		}
		if !hasRole(p.desc, sdk.RoleGuestSource) {
			return fmt.Errorf("plugin %q serves an emitter kind only: %w", name, ErrNoGuestSource)
		}
		reported, err := watchOnce(ctx, p, config, report)
		if ctx.Err() != nil {
			return nil
		}
		if reported {
			fails = 0
		}
		fails++
		log.Warn("guest source watch ended; its guests stay as last reported until it reports again", "error", err)
		if !sleep(ctx, backoff(h.cfg.BackoffBase, h.cfg.BackoffMax, fails)) {
			return nil
		}
	}
}

// watchOnce runs one WatchGuests stream on p until it ends, p dies or
// ctx ends; reported says whether any set arrived.
func watchOnce(ctx context.Context, p *proc, config json.RawMessage, report func([]sdk.Guest)) (reported bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.gone, cancel)()
	st, err := p.rpc.WatchGuests(ctx, &pluginpb.WatchGuestsRequest{Config: config})
	if err != nil {
		return false, err
	}
	for {
		pb, err := st.Recv()
		if err != nil {
			return reported, err // io.EOF too: a watch never ends cleanly on its own
		}
		reported = true
		report(sdk.FromPBSnapshot(pb))
	}
}
