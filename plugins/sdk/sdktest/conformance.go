package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// Suite tells Conformance what a plugin's valid and invalid inputs are.
type Suite struct {
	// ValidConfigs must validate; their normalized forms must validate
	// again to themselves.
	ValidConfigs []json.RawMessage
	// InvalidConfigs must fail with a *sdk.ValidationError naming at least
	// one field (so use field-level mistakes, e.g. {"rate":-1}).
	InvalidConfigs []json.RawMessage
	// NeedsEvents: Run on RunConfig must produce events on its own.
	NeedsEvents bool
	// RunConfig is the config Run and Command subtests use; default the
	// first ValidConfigs entry, else {}. It is normalized first, as the
	// host does.
	RunConfig json.RawMessage
	// CommandArgs gives the args sent to a listed command (default none).
	CommandArgs map[string]json.RawMessage
	// Checkpoints are extra checkpoints a new Run must accept, besides
	// those the plugin produces during the suite.
	Checkpoints [][]byte
	// Timeout is the hang guard of each subtest (default HangGuard).
	Timeout time.Duration
}

// Conformance checks the plugin contract through the real adapter:
// Describe, schema, Validate (valid, idempotent, invalid), events, stop and
// cancellation, resume from produced checkpoints, and commands.
func Conformance(t *testing.T, p sdk.Plugin, s Suite) {
	t.Helper()
	if s.Timeout <= 0 {
		s.Timeout = HangGuard
	}
	c := &conformance{h: New(t, p), s: s}
	t.Run("describe", c.describe)
	t.Run("valid_configs", c.validConfigs)
	t.Run("invalid_configs", c.invalidConfigs)
	if s.NeedsEvents {
		t.Run("events", c.events)
	}
	t.Run("stop", c.stop)
	t.Run("cancel", c.cancel)
	t.Run("commands", c.commands)
	t.Run("command_batch", c.commandBatch)
	t.Run("resume", c.resume)
}

type conformance struct {
	h           *Harness
	s           Suite
	desc        sdk.Description
	checkpoints [][]byte // produced during the suite, for resume
	ids         int
}

func (c *conformance) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), c.s.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func (c *conformance) nextID(t *testing.T) string {
	c.ids++
	return fmt.Sprintf("sdktest-%s-%d", t.Name(), c.ids)
}

// description returns Describe's answer, fetched once.
func (c *conformance) description(t *testing.T) sdk.Description {
	t.Helper()
	if c.desc.Name == "" {
		d, err := c.h.Describe(c.ctx(t))
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		c.desc = d
	}
	return c.desc
}

func (c *conformance) describe(t *testing.T) {
	d := c.description(t)
	if d.Name == "" || d.Version == "" {
		t.Errorf("Describe: name %q, version %q: both must be set", d.Name, d.Version)
	}
	if err := compileSchema(d.ConfigSchema); err != nil {
		t.Errorf("ConfigSchema: %v", err)
	}
	if c.s.NeedsEvents && len(d.EventTypes) == 0 {
		t.Errorf("Describe lists no EventTypes but the plugin emits events")
	}
	seen := map[string]bool{}
	for _, cmd := range d.Commands {
		if cmd.Name == "" || seen[cmd.Name] {
			t.Errorf("command name %q is empty or listed twice", cmd.Name)
		}
		seen[cmd.Name] = true
	}
}

func compileSchema(raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("empty: a plugin must declare its config schema")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	if err := comp.AddResource("sdktest:schema.json", doc); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	if _, err := comp.Compile("sdktest:schema.json"); err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	return nil
}

func (c *conformance) validConfigs(t *testing.T) {
	if len(c.s.ValidConfigs) == 0 {
		t.Fatalf("Suite.ValidConfigs is empty: list at least one config the plugin accepts")
	}
	for _, cfg := range c.s.ValidConfigs {
		ctx := c.ctx(t)
		norm, err := c.h.Validate(ctx, cfg)
		if err != nil {
			t.Errorf("Validate(%s): %v", cfg, err)
			continue
		}
		if !json.Valid(norm) {
			t.Errorf("Validate(%s) normalized to invalid JSON %q", cfg, norm)
			continue
		}
		again, err := c.h.Validate(ctx, norm)
		if err != nil {
			t.Errorf("Validate(normalized %s): %v", norm, err)
			continue
		}
		if !jsonEqual(norm, again) {
			t.Errorf("Validate is not idempotent: %s → %s → %s", cfg, norm, again)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func (c *conformance) invalidConfigs(t *testing.T) {
	for _, cfg := range c.s.InvalidConfigs {
		_, err := c.h.Validate(c.ctx(t), cfg)
		var ve *sdk.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Validate(%s) = %v, want *sdk.ValidationError", cfg, err)
			continue
		}
		named := slices.ContainsFunc(ve.Fields, func(f sdk.FieldError) bool { return f.Field != "" })
		if !named {
			t.Errorf("Validate(%s): no field error names a field: %v", cfg, ve)
		}
		for _, f := range ve.Fields {
			if f.Message == "" {
				t.Errorf("Validate(%s): field %q has no message", cfg, f.Field)
			}
		}
	}
}

// runConfig is the normalized RunConfig.
func (c *conformance) runConfig(t *testing.T) json.RawMessage {
	t.Helper()
	cfg := c.s.RunConfig
	if cfg == nil && len(c.s.ValidConfigs) > 0 {
		cfg = c.s.ValidConfigs[0]
	}
	if cfg == nil {
		cfg = json.RawMessage(`{}`)
	}
	norm, err := c.h.Validate(c.ctx(t), cfg)
	if err != nil {
		t.Fatalf("Validate(RunConfig %s): %v", cfg, err)
	}
	return norm
}
