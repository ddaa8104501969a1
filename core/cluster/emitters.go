package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
)

// Registry is the cluster's record of emitters (a JetStream KV bucket).
type Registry interface {
	// Claim records e unless its id is taken (then emitter.ErrExists).
	Claim(ctx context.Context, e Entry) error
	// Put records e, replacing what its id had.
	Put(ctx context.Context, e Entry) error
	Delete(ctx context.Context, id string) error
	// Get returns the entry of id or emitter.ErrNotFound.
	Get(ctx context.Context, id string) (Entry, error)
	List(ctx context.Context) ([]Entry, error)
}

// Peers reaches the other nodes.
type Peers interface {
	Create(ctx context.Context, node string, req emitter.CreateRequest) (emitter.Spec, error)
	Delete(ctx context.Context, node, id string) error
	Command(ctx context.Context, node, id, name string, args json.RawMessage) (json.RawMessage, error)
	// Known reports whether node is a member of the cluster.
	Known(node string) bool
}

// Mirrors opens the local mirror of an emitter run by another node.
type Mirrors interface {
	Open(ctx context.Context, e Entry) (*stream.Stream, error)
}

// Exporter publishes the streams this node owns to the other nodes.
type Exporter interface {
	Export(st *stream.Stream)
	Unexport(name string)
}

// Local is this node's emitter manager (*emitter.Manager).
type Local interface {
	Create(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
	Ensure(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
	Get(ctx context.Context, id string) (emitter.Spec, error)
	List(ctx context.Context, f emitter.Filter, after string, limit int) ([]emitter.Spec, string)
	Delete(ctx context.Context, id string) error
	Command(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error)
	Stream(id string) (*stream.Stream, error)
	Attach(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
	Stop(ctx context.Context, id string) error
}

// Emitters serves the emitters of the whole cluster as if they were local:
// what this node runs from its manager, the rest through the registry,
// its peers and mirrors.
type Emitters struct {
	node    string
	local   Local
	reg     Registry
	peers   Peers
	mirrors Mirrors
	exp     Exporter
	log     *slog.Logger
}

// NewEmitters returns the cluster's emitters as node sees them.
func NewEmitters(node string, local Local, reg Registry, peers Peers, mirrors Mirrors, exp Exporter, log *slog.Logger) *Emitters {
	return &Emitters{node: node, local: local, reg: reg, peers: peers, mirrors: mirrors, exp: exp, log: log}
}

func (c *Emitters) export(id string) {
	if st, err := c.local.Stream(id); err == nil {
		c.exp.Export(st)
	}
}

// Node is this node's name.
func (c *Emitters) Node() string { return c.node }

// Register records every emitter this node runs (after a restart), so the
// registry names it as their owner. An id another node owns is left to it
// and reported.
func (c *Emitters) Register(ctx context.Context) error {
	specs, _ := c.local.List(ctx, emitter.Filter{}, "", 0)
	var errs []error
	for _, s := range specs {
		e, err := c.reg.Get(ctx, s.ID)
		switch {
		case err == nil && e.Node != c.node:
			errs = append(errs, fmt.Errorf("emitter %s: registered to node %s, not this one: %w", s.ID, e.Node, emitter.ErrExists))
			continue
		case err != nil && !errors.Is(err, emitter.ErrNotFound):
			errs = append(errs, fmt.Errorf("register emitter %s: %w", s.ID, err))
			continue
		}
		if err := c.reg.Put(ctx, Entry{Spec: s, Node: c.node}); err != nil {
			errs = append(errs, fmt.Errorf("register emitter %s: %w", s.ID, err))
			continue
		}
		c.export(s.ID)
	}
	return errors.Join(errs...)
}

// Create runs the emitter on req.Node (default: this node).
func (c *Emitters) Create(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	if req.Node != "" && req.Node != c.node {
		if !c.peers.Known(req.Node) {
			return emitter.Spec{}, &emitter.ValidationError{Fields: []emitter.FieldError{
				{Field: "node", Message: fmt.Sprintf("no node %q in the cluster", req.Node)}}}
		}
		spec, err := c.peers.Create(ctx, req.Node, req)
		spec.Node = req.Node
		return spec, err
	}
	req.Node = ""
	if req.ID == "" {
		req.ID = emitter.NewID()
	}
	// The id is claimed cluster-wide first: two nodes never run one id.
	if err := c.reg.Claim(ctx, Entry{Spec: emitter.Spec{ID: req.ID, Kind: req.Kind}, Node: c.node}); err != nil {
		return emitter.Spec{}, fmt.Errorf("create %s: %w", req.ID, err)
	}
	spec, err := c.local.Create(ctx, req)
	if err != nil {
		return emitter.Spec{}, errors.Join(err, c.reg.Delete(context.WithoutCancel(ctx), req.ID))
	}
	if err := c.reg.Put(ctx, Entry{Spec: spec, Node: c.node}); err != nil {
		return emitter.Spec{}, fmt.Errorf("register %s: %w", spec.ID, err)
	}
	c.export(spec.ID)
	spec.Node = c.node
	return spec, nil
}

// Ensure makes the shared emitter req.ID exist once in the cluster: the
// first node to claim it runs it.
func (c *Emitters) Ensure(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	claim := Entry{Spec: emitter.Spec{ID: req.ID, Kind: req.Kind}, Node: c.node}
	err := c.reg.Claim(ctx, claim)
	if errors.Is(err, emitter.ErrExists) {
		e, gerr := c.reg.Get(ctx, req.ID)
		if gerr != nil {
			return emitter.Spec{}, gerr
		}
		if e.Node != c.node {
			e.Spec.Node = e.Node
			return e.Spec, nil
		}
	} else if err != nil {
		return emitter.Spec{}, err
	}
	spec, err := c.local.Ensure(ctx, req)
	if err != nil {
		return emitter.Spec{}, err
	}
	if err := c.reg.Put(ctx, Entry{Spec: spec, Node: c.node}); err != nil {
		return emitter.Spec{}, err
	}
	c.export(spec.ID)
	spec.Node = c.node
	return spec, nil
}

// Attach is Manager.Attach for an emitter of a guest on this node, entered
// in the registry so that every node serves its stream. As for Create,
// the id is claimed cluster-wide first: one another node owns is refused
// (emitter.ErrExists), and while the registry cannot be reached nothing
// runs and the error says so (the guest service retries it).
func (c *Emitters) Attach(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	claimed, err := c.claimHere(ctx, req)
	if err != nil {
		return emitter.Spec{}, fmt.Errorf("attach %s: %w", req.ID, err)
	}
	before, gerr := c.local.Get(ctx, req.ID)
	wasRunning := gerr == nil && !before.Stopped
	spec, err := c.local.Attach(ctx, req)
	if err != nil {
		if claimed {
			err = errors.Join(err, c.reg.Delete(context.WithoutCancel(ctx), req.ID))
		}
		return emitter.Spec{}, err
	}
	if err := c.reg.Put(ctx, Entry{Spec: spec, Node: c.node}); err != nil {
		if !wasRunning {
			// Nothing may run that the guest service counts as failed:
			// it would not stop it when the guest goes.
			errs := []error{fmt.Errorf("register %s: %w", spec.ID, err), c.local.Stop(context.WithoutCancel(ctx), spec.ID)}
			if claimed {
				errs = append(errs, c.reg.Delete(context.WithoutCancel(ctx), spec.ID))
			}
			return emitter.Spec{}, errors.Join(errs...)
		}
		// It ran before and runs on (a restart's reconcile, a config
		// change): its guest's log is not stopped for a registry blip;
		// the registry keeps the earlier entry until the next attach.
		c.log.Warn("guest emitter attached; the registry keeps its earlier entry", "emitter", spec.ID, "err", err)
	}
	c.export(spec.ID)
	spec.Node = c.node
	return spec, nil
}

// claimHere claims req's id for this node, or finds it this node's
// already (claimed false): a restart, a changed config, a guest back.
func (c *Emitters) claimHere(ctx context.Context, req emitter.CreateRequest) (claimed bool, err error) {
	err = c.reg.Claim(ctx, Entry{Spec: emitter.Spec{ID: req.ID, Kind: req.Kind}, Node: c.node})
	if !errors.Is(err, emitter.ErrExists) {
		return err == nil, err
	}
	e, err := c.reg.Get(ctx, req.ID)
	if err == nil && e.Node != c.node {
		err = fmt.Errorf("registered to node %s: %w", e.Node, emitter.ErrExists)
	}
	return false, err
}

// Stop is Manager.Stop (its guest is gone), the registry told too: the
// stream and its history stay, served from every node.
func (c *Emitters) Stop(ctx context.Context, id string) error {
	if err := c.local.Stop(ctx, id); err != nil {
		return err
	}
	spec, err := c.local.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := c.reg.Put(ctx, Entry{Spec: spec, Node: c.node}); err != nil {
		return fmt.Errorf("stopped %s; the registry still has it running: %w", id, err)
	}
	return nil
}

// Get returns the spec of an emitter anywhere in the cluster.
func (c *Emitters) Get(ctx context.Context, id string) (emitter.Spec, error) {
	if s, err := c.local.Get(ctx, id); err == nil {
		s.Node = c.node
		return s, nil
	}
	e, err := c.reg.Get(ctx, id)
	if err != nil {
		return emitter.Spec{}, err
	}
	e.Spec.Node = e.Node
	return e.Spec, nil
}

// List pages through every emitter of the cluster, as Manager.List does.
func (c *Emitters) List(ctx context.Context, f emitter.Filter, after string, limit int) ([]emitter.Spec, string) {
	entries, err := c.reg.List(ctx)
	if err != nil {
		c.log.Warn("list the cluster's emitters; showing this node's", "err", err)
		return c.local.List(ctx, f, after, limit)
	}
	specs := make([]emitter.Spec, 0, len(entries))
	for _, e := range entries {
		if e.Spec.CreatedAt.IsZero() {
			continue // claimed, still being created
		}
		e.Spec.Node = e.Node
		specs = append(specs, e.Spec)
	}
	return emitter.Paginate(specs, f, after, limit)
}

// Delete stops and removes an emitter on the node that runs it.
func (c *Emitters) Delete(ctx context.Context, id string) error {
	e, err := c.owner(ctx, id)
	if err != nil {
		return err
	}
	if e.Node != c.node {
		return c.peers.Delete(ctx, e.Node, id)
	}
	c.exp.Unexport(id)
	if err := c.local.Delete(ctx, id); err != nil && !errors.Is(err, emitter.ErrNotFound) {
		return err
	}
	return c.reg.Delete(ctx, id)
}

// Command runs a command on the node that runs the emitter.
func (c *Emitters) Command(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error) {
	if _, err := c.local.Get(ctx, id); err == nil {
		return c.local.Command(ctx, id, name, args)
	}
	e, err := c.reg.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.Node == c.node {
		return nil, fmt.Errorf("emitter %q registered here but not running: %w", id, emitter.ErrUnavailable)
	}
	return c.peers.Command(ctx, e.Node, id, name, args)
}

// Stream returns an emitter's stream: its own on the node that runs it, a
// mirror elsewhere.
func (c *Emitters) Stream(ctx context.Context, id string) (*stream.Stream, error) {
	if st, err := c.local.Stream(id); err == nil {
		return st, nil
	}
	e, err := c.reg.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.Node == c.node {
		return nil, fmt.Errorf("emitter %q registered here but not running: %w", id, emitter.ErrUnavailable)
	}
	return c.mirrors.Open(ctx, e)
}

func (c *Emitters) owner(ctx context.Context, id string) (Entry, error) {
	if s, err := c.local.Get(ctx, id); err == nil {
		return Entry{Spec: s, Node: c.node}, nil
	}
	return c.reg.Get(ctx, id)
}
