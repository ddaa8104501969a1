package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// configSchema is checked by the SDK before Validate is called, so the
// API rejects a bad config with a 400 naming the field. Keep it strict
// (additionalProperties false) so typos are caught, not ignored.
const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "counter",
  "type": "object",
  "properties": {
    "interval": {"type": "string", "default": "1s", "description": "Go duration between counts, at least 10ms"},
    "step":     {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1, "description": "added per count"}
  },
  "additionalProperties": false
}`

// config is the normalized config. Validate fills in the defaults, so the
// stored config says exactly what the instance does.
type config struct {
	Interval string `json:"interval"`
	Step     int64  `json:"step"`
}

// checkpoint is the state that must survive a restart. The host stores it
// in the same transaction as the events of its batch, so after a crash the
// instance resumes from the last stored count: no gap, no duplicate.
type checkpoint struct {
	Count int64 `json:"count"`
}

// Counter implements sdk.Plugin and sdk.Commander.
type Counter struct {
	log *slog.Logger

	mu      sync.Mutex
	running map[string]*instance // live Run calls, by instance id
}

// instance is the live state of one running instance; reset changes it
// from a Command call while Run reads it.
type instance struct {
	mu    sync.Mutex
	count int64
}

// NewCounter returns the plugin.
func NewCounter(log *slog.Logger) *Counter {
	return &Counter{log: log, running: make(map[string]*instance)}
}

// Describe tells the host what this plugin serves; it is called once per
// process and must not block.
func (c *Counter) Describe() sdk.Description {
	return sdk.Description{
		Name:         "counter",
		Version:      "1.0.0",
		Description:  "counts up at a configured interval (example plugin)",
		ConfigSchema: json.RawMessage(configSchema),
		Commands:     []sdk.CommandSpec{{Name: "reset", Description: "start counting again from 0"}},
		EventTypes:   []string{"count"},
	}
}

// Validate checks what the schema cannot express (a parseable duration and
// its minimum) and returns the config with defaults filled in. It must be
// idempotent: validating its own output returns the same output.
func (c *Counter) Validate(_ context.Context, raw json.RawMessage) (json.RawMessage, error) {
	cfg, _, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

func parseConfig(raw json.RawMessage) (config, time.Duration, error) {
	cfg := config{Interval: "1s", Step: 1}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return config{}, 0, sdk.Invalid("", "config: %v", err)
		}
	}
	d, err := time.ParseDuration(cfg.Interval)
	if err != nil || d < 10*time.Millisecond {
		return config{}, 0, sdk.Invalid("interval", "must be a Go duration of at least 10ms, got %q", cfg.Interval)
	}
	if cfg.Step < 1 {
		return config{}, 0, sdk.Invalid("step", "must be at least 1")
	}
	cfg.Interval = d.String() // canonical form: "1000ms" is stored as "1s"
	return cfg, d, nil
}

// Run counts until ctx is done. Returning nil after ctx is done is a clean
// stop; returning early (or an error) makes the host restart the instance
// from its last durable checkpoint.
func (c *Counter) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	cfg, every, err := parseConfig(inst.Config)
	if err != nil {
		return err
	}
	start, err := decodeCheckpoint(inst.Checkpoint)
	if err != nil {
		return err
	}
	st := &instance{count: start.Count}
	c.register(inst.ID, st)
	defer c.unregister(inst.ID, st)

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		st.mu.Lock()
		st.count += cfg.Step
		n := st.count
		st.mu.Unlock()
		// One event per batch is fine at this rate; a fast plugin should
		// put many events in one batch (one checkpoint per batch).
		if err := out.Emit(ctx, countBatch(n)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("counter: emit: %w", err)
		}
	}
}

// Command implements sdk.Commander. The new state must come from
// inst.Checkpoint (the host's latest accepted one) and go back as the
// batch's checkpoint: the host stores it before it answers the caller.
func (c *Counter) Command(_ context.Context, inst sdk.Instance, name string, args json.RawMessage) (sdk.CommandResult, error) {
	if name != "reset" {
		// Wrap ErrUnknownCommand: the host answers 404.
		return sdk.CommandResult{}, fmt.Errorf("counter: %q: %w", name, sdk.ErrUnknownCommand)
	}
	if len(args) > 0 && string(args) != "null" && string(args) != "{}" {
		// A *sdk.CommandError is the caller's fault: the host answers 400.
		return sdk.CommandResult{}, &sdk.CommandError{Code: "bad_args", Message: "reset takes no arguments"}
	}
	// If this process is running the instance, make it count on from 0.
	c.mu.Lock()
	st := c.running[inst.ID]
	c.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		st.count = 0
		st.mu.Unlock()
	}
	c.log.Info("counter reset", "instance", inst.ID)
	b := countBatch(0)
	return sdk.CommandResult{Result: b.Events[0].Data, Batch: b}, nil
}

func (c *Counter) register(id string, st *instance) {
	c.mu.Lock()
	c.running[id] = st
	c.mu.Unlock()
}

// unregister removes st only if it is still the registered run: after a
// restart a newer Run of the same id may already have replaced it.
func (c *Counter) unregister(id string, st *instance) {
	c.mu.Lock()
	if c.running[id] == st {
		delete(c.running, id)
	}
	c.mu.Unlock()
}

// countBatch is one "count" event plus the checkpoint that holds once it
// is stored.
func countBatch(n int64) sdk.Batch {
	data := fmt.Appendf(nil, `{"count":%d}`, n)
	return sdk.Batch{
		Events:     []sdk.Event{{Type: "count", Data: data}},
		Checkpoint: fmt.Appendf(nil, `{"count":%d}`, n),
	}
}

func decodeCheckpoint(raw []byte) (checkpoint, error) {
	var cp checkpoint
	if len(raw) == 0 {
		return cp, nil // first start
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return cp, fmt.Errorf("counter: bad checkpoint %q: %w", raw, err)
	}
	return cp, nil
}
