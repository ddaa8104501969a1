package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

func (s *Server) listPlugins(_ context.Context, c *app.RequestContext) error {
	items := []api.Plugin{}
	if s.d.Plugins != nil {
		items = append(items, s.d.Plugins.Plugins()...)
	}
	return writeJSON(c, http.StatusOK, api.Items[api.Plugin]{Items: items})
}

func (s *Server) clusterView(ctx context.Context, c *app.RequestContext) error {
	if s.d.Cluster != nil {
		return writeJSON(c, http.StatusOK, s.d.Cluster(ctx))
	}
	self := api.Node{Name: "local", Health: api.HealthUp, Self: true}
	if s.d.Emitters != nil {
		all, _ := s.d.Emitters.List(ctx, emitter.Filter{}, "", 0)
		self.Emitters = len(all)
	}
	return writeJSON(c, http.StatusOK, api.Cluster{Mode: api.ModeSingle, Node: self.Name, Nodes: []api.Node{self}})
}

func (s *Server) createEmitter(ctx context.Context, c *app.RequestContext) error {
	b, err := s.body(c)
	if err != nil {
		return err
	}
	req, err := decodeCreateRequest(b)
	if err != nil {
		return err
	}
	req.Tenant, _ = tenant(c)
	spec, err := s.d.Emitters.Create(ctx, req)
	if err != nil {
		return err
	}
	c.Response.Header.Set("Location", "/api/v1/emitters/"+spec.ID)
	return writeJSON(c, http.StatusCreated, s.emitterOut(spec))
}

// listEmitters answers GET /api/v1/emitters?kind=&label=k:v&limit=&after=.
func (s *Server) listEmitters(ctx context.Context, c *app.RequestContext) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	f := emitter.Filter{Kind: c.Query("kind")}
	conflict := false // label filters AND together: k:a and k:b match nothing
	for _, raw := range c.QueryArgs().PeekAll("label") {
		k, v, ok := strings.Cut(string(raw), ":")
		if !ok || k == "" {
			return fieldError("invalid_query", "label", `must be "key:value"`)
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		if old, ok := f.Labels[k]; ok && old != v {
			conflict = true
		}
		f.Labels[k] = v
	}
	if conflict {
		return writeJSON(c, http.StatusOK, api.EmitterPage{Items: []api.Emitter{}})
	}
	specs, next := s.d.Emitters.List(ctx, f, c.Query("after"), limit)
	plugins := s.pluginStates()
	now := time.Now()
	// Another tenant's emitters are left out after paging: a page may
	// hold fewer than limit, and next still continues after the last.
	page := api.EmitterPage{Items: make([]api.Emitter, 0, len(specs)), Next: next}
	for _, spec := range specs {
		if visible(c, spec) {
			page.Items = append(page.Items, s.emitterLive(spec, plugins, now))
		}
	}
	return writeJSON(c, http.StatusOK, page)
}

func (s *Server) getEmitter(ctx context.Context, c *app.RequestContext) error {
	spec, err := s.ownEmitter(ctx, c, c.Param("id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, s.emitterLive(spec, s.pluginStates(), time.Now()))
}

func (s *Server) deleteEmitter(ctx context.Context, c *app.RequestContext) error {
	if id := c.Param("id"); slices.Contains(s.d.Shared, id) {
		return &httperr.Error{Status: http.StatusConflict, Code: "shared_emitter",
			Message: fmt.Sprintf("emitter %q is a shared built-in emitter (it serves /%s): it cannot be deleted", id, id)}
	}
	if _, authed := tenant(c); authed {
		spec, err := s.ownEmitter(ctx, c, c.Param("id"))
		if err != nil {
			return err
		}
		if err := mayDelete(c, spec); err != nil {
			return err
		}
	}
	if err := s.d.Emitters.Delete(ctx, c.Param("id")); err != nil {
		return err
	}
	c.SetStatusCode(http.StatusNoContent)
	return nil
}

func (s *Server) command(ctx context.Context, c *app.RequestContext) error {
	return s.runCommand(ctx, c, c.Param("id"), c.Param("name"))
}

// emitterOut is spec as the API shows it. Node stays empty: on a single
// node every emitter is this node's.
func (s *Server) emitterOut(spec emitter.Spec) api.Emitter {
	out := api.Emitter{ID: spec.ID, Kind: spec.Kind, Config: spec.Config, Labels: spec.Labels, CreatedAt: spec.CreatedAt, Stopped: spec.Stopped,
		Node: spec.Node, Shared: slices.Contains(s.d.Shared, spec.ID), Retention: api.Retention{Persist: spec.Retention.Persist, MaxEvents: spec.Retention.MaxEvents}}
	if spec.Retention.MaxAge != 0 {
		out.Retention.MaxAge = time.Duration(spec.Retention.MaxAge).String()
	}
	return out
}

// streamEvents answers a history page (api.EventPage, built from the
// events' cached envelopes): up to limit events after ?after=,
// oldest first, and "next", the after of the following page.
func (s *Server) streamEvents(ctx context.Context, c *app.RequestContext) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	after, _, err := queryUint(c, "after")
	if err != nil {
		return err
	}
	flt, err := s.queryFilter(c)
	if err != nil {
		return err
	}
	st, err := s.resolveStream(ctx, c, c.Param("stream"))
	if err != nil {
		return err
	}
	evs, next, err := readAfterFiltered(ctx, st, after, limit, flt)
	if err != nil {
		return err
	}
	buf := appendEvents([]byte(`{"events":`), evs)
	buf = append(buf, `,"next":`...)
	buf = strconv.AppendUint(buf, next, 10)
	buf = append(buf, `,"head":`...)
	buf = strconv.AppendUint(buf, st.Head(), 10)
	c.Data(http.StatusOK, jsonContentType, append(buf, '}'))
	return nil
}

// whoami answers GET /api/v1/whoami: the principal of the request's
// token, so a client (livedoc's queue console) can default to its tenant.
func (s *Server) whoami(_ context.Context, c *app.RequestContext) error {
	p, ok := auth.FromContext(c)
	if !ok {
		return writeJSON(c, http.StatusOK, api.Whoami{Auth: s.d.Auth.Enabled()})
	}
	return writeJSON(c, http.StatusOK, api.Whoami{Auth: true, Subject: p.Subject, Tenant: p.Tenant, Scopes: p.Scopes})
}
