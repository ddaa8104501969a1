package sdktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

// ticker is a minimal plugin: one "tick" event per interval.
type ticker struct{}

func (ticker) Describe() sdk.Description {
	return sdk.Description{
		Name: "ticker", Version: "0.1.0",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"ms":{"type":"integer","minimum":1}},"additionalProperties":false}`),
		EventTypes:   []string{"tick"},
	}
}

func (ticker) Validate(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	var cfg struct {
		MS int `json:"ms"`
	}
	if err := json.Unmarshal(c, &cfg); err != nil {
		return nil, sdk.Invalid("", "%v", err)
	}
	if cfg.MS == 0 {
		cfg.MS = 10
	}
	return json.Marshal(cfg)
}

func (ticker) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ev := sdk.Event{Type: "tick", Data: fmt.Appendf(nil, `{"n":%d}`, n)}
		if err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{ev}}); err != nil {
			return nil // stopped
		}
	}
}

// TestExampleConformance is how a plugin author checks the whole contract.
func TestExampleConformance(t *testing.T) {
	sdktest.Conformance(t, ticker{}, sdktest.Suite{
		ValidConfigs:   []json.RawMessage{json.RawMessage(`{}`), json.RawMessage(`{"ms":20}`)},
		InvalidConfigs: []json.RawMessage{json.RawMessage(`{"ms":0}`), json.RawMessage(`{"rate":1}`)},
		NeedsEvents:    true,
	})
}

// TestExampleHarness drives single calls, for behaviour tests of a plugin.
func TestExampleHarness(t *testing.T) {
	h := sdktest.New(t, ticker{})
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()

	cfg, err := h.Validate(ctx, json.RawMessage(`{}`))
	if err != nil || string(cfg) != `{"ms":10}` {
		t.Fatalf("Validate = %s, %v", cfg, err)
	}
	r := h.Run(ctx, sdk.Instance{ID: "demo", Config: cfg})
	defer r.Stop()
	b, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Events[0].Data) != `{"n":1}` {
		t.Fatalf("first event %s", b.Events[0].Data)
	}
}

// racks is a minimal guest source: its guests are the config's names.
type racks struct{}

func (racks) DescribeGuestSource() sdk.GuestSourceDescription {
	return sdk.GuestSourceDescription{
		Name: "racks", Version: "0.1.0",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"names":{"type":"array","items":{"type":"string"}}},"required":["names"]}`),
	}
}

func (racks) ValidateGuestSource(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	return c, nil
}

func (racks) WatchGuests(ctx context.Context, c json.RawMessage, report func([]sdk.Guest) error) error {
	var cfg struct{ Names []string }
	if err := json.Unmarshal(c, &cfg); err != nil {
		return err
	}
	gs := make([]sdk.Guest, len(cfg.Names))
	for i, n := range cfg.Names {
		gs[i] = sdk.Guest{Name: n}
	}
	if err := report(gs); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestExampleGuestSource unit-tests a guest source without the host:
// validate its config as the host would, then read what it reports.
func TestExampleGuestSource(t *testing.T) {
	h := sdktest.NewGuestSource(t, racks{})
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()

	var ve *sdk.ValidationError
	if _, err := h.ValidateGuestSource(ctx, json.RawMessage(`{}`)); !errors.As(err, &ve) {
		t.Fatalf("a config without names: %v, want a ValidationError", err)
	}
	cfg, err := h.ValidateGuestSource(ctx, json.RawMessage(`{"names":["r1","r2"]}`))
	if err != nil {
		t.Fatal(err)
	}
	w := h.WatchGuests(ctx, cfg)
	defer w.Stop()
	gs, err := w.Next(ctx)
	if err != nil || len(gs) != 2 || gs[0].Name != "r1" {
		t.Fatalf("first report %+v, %v", gs, err)
	}
}
