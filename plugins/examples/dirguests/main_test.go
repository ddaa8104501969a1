package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func names(gs []sdk.Guest) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name
	}
	return out
}

// Directories created and removed under dir are guests appearing and
// going, reported through the real SDK adapter.
func TestWatchReportsDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "vm-a"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := sdktest.NewGuestSource(t, dirGuests{})
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()
	cfg, err := h.ValidateGuestSource(ctx, json.RawMessage(`{"dir":"`+dir+`","interval_ms":10,"labels":{"tier":"vm"}}`))
	if err != nil {
		t.Fatal(err)
	}
	w := h.WatchGuests(ctx, cfg)
	gs, err := w.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Name != "vm-a" || gs[0].Path != filepath.Join(dir, "vm-a") || gs[0].Labels["tier"] != "vm" {
		t.Fatalf("first report %+v, want vm-a with its path and label", gs)
	}
	if err := os.Mkdir(filepath.Join(dir, "vm-b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Until(ctx, func(gs []sdk.Guest) bool { return slices.Equal(names(gs), []string{"vm-a", "vm-b"}) }); err != nil {
		t.Fatalf("vm-b never appeared: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "vm-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Until(ctx, func(gs []sdk.Guest) bool { return slices.Equal(names(gs), []string{"vm-b"}) }); err != nil {
		t.Fatalf("vm-a never went: %v", err)
	}
}

// A bad config is refused field by field, by the schema first and then
// by the plugin's own check.
func TestValidateRefusesFields(t *testing.T) {
	t.Parallel()
	h := sdktest.NewGuestSource(t, dirGuests{})
	for _, tc := range []struct {
		config string
		field  string
	}{
		{`{}`, ""},
		{`{"dir":"/x","interval_ms":1}`, "interval_ms"},
		{`{"dir":"relative"}`, "dir"},
		{`{"dir":"/x","bogus":1}`, ""},
	} {
		_, err := h.ValidateGuestSource(t.Context(), json.RawMessage(tc.config))
		var ve *sdk.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", tc.config, err)
			continue
		}
		if tc.field != "" && ve.Fields[0].Field != tc.field {
			t.Errorf("%s: fields %+v, want %q", tc.config, ve.Fields, tc.field)
		}
	}
	norm, err := h.ValidateGuestSource(t.Context(), json.RawMessage(`{"dir":"/x"}`))
	if err != nil || string(norm) != `{"dir":"/x","interval_ms":200}` {
		t.Fatalf("normalized %s, %v", norm, err)
	}
}

// The plugin serves no emitter kind: the emitter calls are refused.
func TestServesNoEmitter(t *testing.T) {
	t.Parallel()
	h := sdktest.NewGuestSource(t, dirGuests{})
	d, err := h.Describe(t.Context())
	if err != nil || d.Name != "dirguests" {
		t.Fatalf("describe %+v, %v", d, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second*10)
	defer cancel()
	if _, err := h.Validate(ctx, json.RawMessage(`{}`)); err == nil {
		t.Fatal("emitter Validate accepted by a guest-only plugin")
	}
}
