package emitter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
)

// Stop ends an emitter's plugin run but keeps the emitter: its spec
// (marked stopped, so Restore does not run it), checkpoint, stream and
// history stay, readable and pruned by its retention. Attach runs it
// again. Stopping a stopped emitter does nothing.
func (m *Manager) Stop(ctx context.Context, id string) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	inst, err := m.lookup(id)
	if err != nil {
		return err
	}
	if inst.spec.Stopped {
		return nil
	}
	if err := m.runner.Stop(ctx, inst.spec.Kind, id); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	spec := inst.spec
	spec.Stopped = true
	if err := m.specs.PutSpec(ctx, spec); err != nil {
		return fmt.Errorf("stop %s: store: %w", id, err)
	}
	m.swap(inst, spec)
	return nil
}

// Attach makes emitter req.ID run with req's kind, config and labels:
// it creates it if missing, runs it again if stopped and restarts it if
// its config or labels differ, keeping its stream, history and checkpoint.
// One that already runs so is left alone, so attaching twice (a restart)
// never makes a second emitter. The retention of an existing emitter is
// kept. An existing emitter of another kind is ErrExists.
func (m *Manager) Attach(ctx context.Context, req CreateRequest) (Spec, error) {
	if err := checkRequest(&req); err != nil {
		return Spec{}, err
	}
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	inst, err := m.lookup(req.ID)
	if errors.Is(err, ErrNotFound) {
		return m.Create(ctx, req)
	}
	if err != nil {
		return Spec{}, err
	}
	if inst.spec.Kind != req.Kind {
		return Spec{}, fmt.Errorf("attach %s: a %s emitter has this id: %w", req.ID, inst.spec.Kind, ErrExists)
	}
	cfg, err := m.runner.Validate(ctx, req.Kind, req.Config)
	if err != nil {
		return Spec{}, fmt.Errorf("attach %s emitter: %w", req.Kind, err)
	}
	old := inst.spec
	if !old.Stopped && bytes.Equal(cfg, old.Config) && maps.Equal(req.Labels, old.Labels) {
		return old, nil
	}
	if !old.Stopped {
		if err := m.runner.Stop(ctx, old.Kind, old.ID); err != nil {
			return Spec{}, fmt.Errorf("attach %s: stop: %w", req.ID, err)
		}
	}
	spec := old
	spec.Config, spec.Labels, spec.Stopped = cfg, req.Labels, false
	if err := m.specs.PutSpec(ctx, spec); err != nil {
		return Spec{}, fmt.Errorf("attach %s: store: %w", req.ID, err)
	}
	next := m.swap(inst, spec)
	if err := m.runner.Start(ctx, spec.Kind, spec.ID, spec.Config, next); err != nil {
		// Leave it stopped, as it is: a restart must not try it blindly.
		spec.Stopped = true
		m.swap(next, spec)
		return Spec{}, errors.Join(fmt.Errorf("attach %s: start: %w", req.ID, err), m.specs.PutSpec(ctx, spec))
	}
	return spec, nil
}

// swap replaces inst (whose plugin does not run) by one with spec, the
// same stream and the latest checkpoint, and returns it. A new instance,
// not a changed one: readers hold inst.spec without a lock.
func (m *Manager) swap(inst *instance, spec Spec) *instance {
	inst.mu.Lock()
	latest := inst.latest
	inst.mu.Unlock()
	next := &instance{spec: spec, stream: inst.stream, specs: m.specs, latest: latest}
	m.mu.Lock()
	m.emitters[spec.ID] = next
	m.mu.Unlock()
	return next
}
