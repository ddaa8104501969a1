package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/guest"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/config"
	"github.com/sidestream/sidestream/sidecar/internal/guestsource/files"
	"github.com/sidestream/sidestream/sidecar/internal/guestsource/plugin"
	"github.com/sidestream/sidestream/sidecar/internal/guestsource/proc"
	"github.com/sidestream/sidestream/sidecar/internal/guestsource/static"
)

// startGuests opens the guests lifecycle stream and starts discovering
// guests and attaching their emitters. A rule naming a kind no plugin
// serves stops the start, with its line and field.
func (s *system) startGuests(ctx context.Context) error {
	st, err := s.hub.Open(ctx, guest.StreamName, guest.StreamConfig)
	if err != nil {
		return fmt.Errorf("guests stream: %w", err)
	}
	s.guests = guest.New(s.guestEmitters(), guest.Options{Events: st, Log: s.log.With("component", "guests")})
	s.push("guests", s.guests.Close)
	if err := s.applyGuests(ctx, s.cfg.Guests); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

// guestEmitters is what the guest service attaches through: this node's
// manager, and in cluster mode the cluster's attach and stop, which enter
// the emitters in the registry so every node serves their streams. Get
// and List stay this node's: the service reconciles what it runs here.
func (s *system) guestEmitters() guest.Emitters {
	if s.cluster == nil {
		return s.mgr
	}
	return clusterGuestEmitters{Manager: s.mgr, cluster: s.cluster.emitters}
}

type clusterGuestEmitters struct {
	*emitter.Manager
	cluster *cluster.Emitters
}

func (g clusterGuestEmitters) Attach(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	return g.cluster.Attach(ctx, req)
}

func (g clusterGuestEmitters) Stop(ctx context.Context, id string) error {
	return g.cluster.Stop(ctx, id)
}

// applyGuests checks the rules' kinds against the plugins and hands
// sources and rules to the guest service (at start and on reload).
func (s *system) applyGuests(ctx context.Context, g config.Guests) error {
	var errs []error
	for i, r := range g.Rules {
		for j, e := range r.Emitters {
			dctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.PluginStartTimeout))
			_, err := s.host.Describe(dctx, e.Kind)
			cancel()
			if errors.Is(err, emitter.ErrUnknownKind) {
				errs = append(errs, &config.FieldError{Field: fmt.Sprintf("guests.rules[%d].emitters[%d].kind", i, j),
					Message: fmt.Sprintf("line %d: no plugin serves kind %q", e.Line, e.Kind)})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	sources := make([]guest.NamedSource, 0, len(g.Sources))
	for i, src := range g.Sources {
		var gs guest.Source
		var err error
		if src.Type == "plugin" {
			gs, err = s.pluginGuestSource(ctx, i, src)
		} else {
			gs, err = guestSource(src)
		}
		if err != nil {
			return err
		}
		sources = append(sources, guest.NamedSource{Name: src.Name, Key: src.Key(), Source: gs})
	}
	rules := make([]guest.Rule, len(g.Rules))
	for i, r := range g.Rules {
		rules[i] = r.Rule()
	}
	return s.guests.Apply(ctx, sources, rules)
}

// pluginGuestSource checks a `type: plugin` source's config against its
// plugin (schema, then the plugin's own check) and builds the adapter; an
// error names the field and line, as config.Load's do.
func (s *system) pluginGuestSource(ctx context.Context, i int, src config.GuestSource) (guest.Source, error) {
	f := fmt.Sprintf("guests.sources[%d]", i)
	raw, err := json.Marshal(src.Config)
	if err != nil || src.Config == nil {
		raw = []byte("{}")
	}
	vctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.PluginStartTimeout))
	norm, err := s.host.ValidateGuestSource(vctx, src.Kind, raw)
	cancel()
	var ve *emitter.ValidationError
	switch {
	case errors.As(err, &ve):
		errs := make([]error, 0, len(ve.Fields))
		for _, fe := range ve.Fields {
			field := f + ".config"
			if fe.Field != "" {
				field += "." + strings.ReplaceAll(strings.TrimPrefix(fe.Field, "/"), "/", ".")
			}
			errs = append(errs, &config.FieldError{Field: field, Message: fmt.Sprintf("line %d: %s", src.Line, fe.Message)})
		}
		return nil, errors.Join(errs...)
	case err != nil:
		return nil, &config.FieldError{Field: f + ".kind", Message: fmt.Sprintf("line %d: %v", src.Line, err)}
	}
	return plugin.Source{Host: s.host, Kind: src.Kind, Config: norm, Labels: src.Labels}, nil
}

// guestSource builds the adapter of one configured source (validated by
// config.Load).
func guestSource(src config.GuestSource) (guest.Source, error) {
	if src.Type == "static" {
		gs := make([]guest.Guest, len(src.Guests))
		for i, g := range src.Guests {
			labels := map[string]string{}
			for k, v := range src.Labels {
				labels[k] = v
			}
			for k, v := range g.Labels {
				labels[k] = v
			}
			gs[i] = guest.Guest{Name: g.Name, Labels: labels}
		}
		return static.Source{Guests: gs}, nil
	}
	p, err := guest.ParsePattern(src.Pattern)
	if err != nil {
		return nil, fmt.Errorf("guest source %s: %w", src.Name, err)
	}
	every := time.Duration(src.Every)
	switch src.Type {
	case "files":
		return files.New(files.Options{Pattern: p, Labels: src.Labels, Rescan: every}), nil
	case "cgroup":
		return proc.NewCgroup(proc.CgroupOptions{Pattern: p, Controller: src.Controller, Labels: src.Labels, Every: every}), nil
	case "pidfile":
		return proc.NewPidFile(proc.PidFileOptions{Pattern: p, Labels: src.Labels, Every: every}), nil
	}
	return nil, fmt.Errorf("guest source %s: unknown type %q", src.Name, src.Type)
}

// guestList is what GET /api/v1/guests shows.
func (s *system) guestList() []api.Guest {
	views := s.guests.Guests()
	out := make([]api.Guest, len(views))
	for i, v := range views {
		g := api.Guest{Name: v.Name, Source: v.Source, Labels: v.Labels, State: v.State, Path: v.Path,
			PIDs: v.PIDs, Cgroup: v.Cgroup, Emitters: make([]api.GuestEmitter, len(v.Emitters))}
		for j, a := range v.Emitters {
			g.Emitters[j] = api.GuestEmitter{ID: a.ID, Kind: a.Kind, Rule: a.Rule, State: a.State, Error: a.Error}
		}
		out[i] = g
	}
	return out
}

// watchReload applies the guest sources and rules of the configuration
// again on every signal of reload (SIGHUP), until ctx ends. A bad
// configuration is refused and logged with its line and field; the one in
// force stays. Other keys need a restart.
func (s *system) watchReload(ctx context.Context) {
	if s.opts.Reload == nil || s.opts.LoadConfig == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.opts.Reload:
		}
		cfg, err := s.opts.LoadConfig()
		if err == nil {
			err = s.applyGuests(ctx, cfg.Guests)
		}
		if err != nil {
			s.log.Error("configuration reload refused; the previous guest rules stay in force", "err", err)
			continue
		}
		s.log.Info("configuration reloaded", "guest_sources", len(cfg.Guests.Sources), "guest_rules", len(cfg.Guests.Rules))
	}
}
