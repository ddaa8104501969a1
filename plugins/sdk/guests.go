package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// Roles a plugin offers, as Describe reports them to the host.
const (
	RoleEmitter     = "emitter"
	RoleGuestSource = "guest_source"
)

// Guest is one guest instance (a VM, container, sandbox) as a guest source
// reports it. Attach rules read every field: {guest}, {labels.KEY},
// {path}, {pid} (the lowest of PIDs) and {cgroup}.
type Guest struct {
	// Name identifies the guest within the source; required.
	Name   string
	Labels map[string]string
	// Path is the file the guest was found by, if any.
	Path string
	// PIDs are the guest's processes.
	PIDs   []int
	Cgroup string
}

// GuestSourceDescription tells the host what a guest source is.
type GuestSourceDescription struct {
	// Name and Version are the plugin's when it serves guests only; a
	// plugin that is also an emitter is named by its Description.
	Name        string
	Version     string
	Description string
	// ConfigSchema is a JSON Schema (draft 2020-12) of the source's config
	// (the `config` of a `type: plugin` guest source). The host validates
	// the configured source against it when it loads the config.
	ConfigSchema json.RawMessage
}

// GuestSource is what a plugin that discovers guests implements (libvirt
// domains, containerd tasks, kubelet pods, Firecracker VMs...). Serve a
// guest source alone with ServeGuestSource, or implement it on a Plugin to
// serve both from one binary.
type GuestSource interface {
	DescribeGuestSource() GuestSourceDescription
	// ValidateGuestSource normalizes a config that already passed
	// ConfigSchema. Return a *ValidationError to report field errors.
	ValidateGuestSource(ctx context.Context, config json.RawMessage) (json.RawMessage, error)
	// WatchGuests reports the whole set of guests present: once soon
	// after it starts, then each time the set may have changed, until ctx
	// is done. A guest left out of a report is gone and its emitters are
	// stopped. report fails once the host stopped listening. Returning nil
	// after ctx is done is a clean stop; any other return is a failure and
	// the host calls WatchGuests again after a pause, keeping the guests
	// of the last report meanwhile.
	WatchGuests(ctx context.Context, config json.RawMessage, report func([]Guest) error) error
}

// errWatchEnded is the failure reported when WatchGuests returns nil
// although the host did not stop it.
var errWatchEnded = errors.New("plugin WatchGuests returned before the host stopped it")

// NewGuestSourceServer returns the gRPC service of a plugin that serves
// only a guest source. ServeGuestSource uses it; sdktest uses it directly.
func NewGuestSourceServer(g GuestSource, log *slog.Logger) pluginpb.EmitterServer {
	return newServer(nil, g, log)
}

// ServeGuestSource runs g as a plugin process that reports guests and
// serves no emitter kind; call it from main.
func ServeGuestSource(g GuestSource) { serve(nil, g) }

func (s *server) ValidateGuestSource(ctx context.Context, req *pluginpb.ValidateRequest) (resp *pluginpb.ValidateResponse, err error) {
	defer s.recoverCall("ValidateGuestSource", "", &err)
	if s.gs == nil {
		return nil, status.Errorf(codes.Unimplemented, "plugin %s serves no guest source", s.desc.Name)
	}
	return validateWith(ctx, s.gschema, s.gs.ValidateGuestSource, req.GetConfig())
}

// WatchGuests runs the guest source in the stream's goroutine until the
// host cancels the stream.
func (s *server) WatchGuests(req *pluginpb.WatchGuestsRequest, stream grpc.ServerStreamingServer[pluginpb.GuestSnapshot]) (err error) {
	if s.gs == nil {
		return status.Errorf(codes.Unimplemented, "plugin %s serves no guest source", s.desc.Name)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer s.recoverCall("WatchGuests", "", &err)
	var mu sync.Mutex // one sender at a time; none once the watch ended
	ended := false
	defer func() { mu.Lock(); ended = true; mu.Unlock() }()
	report := func(gs []Guest) error {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return errors.New("report: the watch has ended")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return stream.Send(toPBSnapshot(gs))
	}
	err = s.gs.WatchGuests(ctx, orEmptyObject(req.GetConfig()), report)
	switch {
	case ctx.Err() != nil:
		return nil
	case err == nil:
		return status.Error(codes.Aborted, errWatchEnded.Error())
	default:
		s.log.Warn("guest source failed", "error", err)
		return status.Errorf(codes.Aborted, "watch guests: %v", err)
	}
}

func toPBSnapshot(gs []Guest) *pluginpb.GuestSnapshot {
	out := &pluginpb.GuestSnapshot{Guests: make([]*pluginpb.Guest, len(gs))}
	for i, g := range gs {
		pids := make([]int32, len(g.PIDs))
		for j, p := range g.PIDs {
			pids[j] = int32(p)
		}
		out.Guests[i] = &pluginpb.Guest{Name: g.Name, Labels: maps.Clone(g.Labels), Path: g.Path, Pids: pids, Cgroup: g.Cgroup}
	}
	return out
}

// FromPBSnapshot converts a snapshot off the wire (the host and sdktest
// read it so).
func FromPBSnapshot(pb *pluginpb.GuestSnapshot) []Guest {
	out := make([]Guest, len(pb.GetGuests()))
	for i, g := range pb.GetGuests() {
		var pids []int
		for _, p := range g.GetPids() {
			pids = append(pids, int(p))
		}
		out[i] = Guest{Name: g.GetName(), Labels: g.GetLabels(), Path: g.GetPath(), PIDs: pids, Cgroup: g.GetCgroup()}
	}
	return out
}
