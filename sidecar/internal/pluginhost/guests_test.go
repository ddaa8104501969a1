package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// fileGuests is the test guest source: its guests are the lines of the
// file its config names, read every 10ms.
type fileGuests struct{}

func (fileGuests) DescribeGuestSource() sdk.GuestSourceDescription {
	return sdk.GuestSourceDescription{Name: "vms", Version: "0.3.0",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"file":{"type":"string","minLength":1}},"required":["file"],"additionalProperties":false}`)}
}

func (fileGuests) ValidateGuestSource(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	return c, nil
}

func (fileGuests) WatchGuests(ctx context.Context, raw json.RawMessage, report func([]sdk.Guest) error) error {
	var c struct{ File string }
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	var last []string
	for first := true; ; first = false {
		b, _ := os.ReadFile(c.File)
		names := strings.Fields(string(b))
		if first || !slices.Equal(names, last) {
			gs := make([]sdk.Guest, len(names))
			for i, n := range names {
				gs[i] = sdk.Guest{Name: n, PIDs: []int{os.Getpid()}}
			}
			if err := report(gs); err != nil {
				return err
			}
			last = names
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reports records every set a watch reported.
type reports struct {
	mu   sync.Mutex
	sets [][]string
}

func (r *reports) add(gs []sdk.Guest) {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	r.mu.Lock()
	r.sets = append(r.sets, names)
	r.mu.Unlock()
}

func (r *reports) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

func (r *reports) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

// A guest-source plugin runs as a real subprocess: its config is
// validated by its schema, its sets arrive, and when it is killed the
// host restarts it and the watch resumes without ever reporting the
// guests gone in between; the first set after the restart reconciles
// what changed meanwhile.
func TestGuestSourcePluginSurvivesCrash(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "guests")
	if err := os.WriteFile(file, []byte("a b"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, fastConfig(builtin("vms", "guests")), nil)
	ctx := ctxT(t)

	_, err := h.ValidateGuestSource(ctx, "vms", json.RawMessage(`{"file":""}`))
	var ve *emitter.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "file" {
		t.Fatalf("bad config: %v, want a field error on file", err)
	}
	cfg, err := h.ValidateGuestSource(ctx, "vms", json.RawMessage(`{"file":"`+file+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Describe(ctx, "vms"); !errors.Is(err, emitter.ErrUnknownKind) {
		t.Fatalf("Describe of a guest-only plugin: %v, want ErrUnknownKind", err)
	}

	var rec reports
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.WatchGuests(wctx, "vms", cfg, rec.add) }()
	eventually(t, "the first set", func() bool { return slices.Equal(rec.last(), []string{"a", "b"}) })

	pid := statusOf(h, "vms").PID
	if p, err := os.FindProcess(pid); err != nil || p.Kill() != nil {
		t.Fatalf("kill the plugin %d: %v", pid, err)
	}
	if err := os.WriteFile(file, []byte("b c"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the set after the restart", func() bool { return slices.Equal(rec.last(), []string{"b", "c"}) })
	if st := statusOf(h, "vms"); st.Restarts < 1 || st.PID == pid {
		t.Fatalf("status %+v: the plugin was not restarted", st)
	}
	for _, set := range rec.all() {
		if len(set) == 0 {
			t.Fatalf("sets %v: the crash reported the guests gone", rec.all())
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("WatchGuests after cancel: %v", err)
	}
}

// An emitter-only plugin is no guest source, and a guest source no
// emitter kind: each refusal says so.
func TestGuestSourceRolesRefused(t *testing.T) {
	t.Parallel()
	h := newHost(t, fastConfig(builtin("counter", "counter"), builtin("vms", "guests")), nil)
	ctx := ctxT(t)
	if _, err := h.ValidateGuestSource(ctx, "counter", json.RawMessage(`{}`)); !errors.Is(err, ErrNoGuestSource) {
		t.Errorf("ValidateGuestSource(counter): %v", err)
	}
	if err := h.WatchGuests(ctx, "counter", json.RawMessage(`{}`), func([]sdk.Guest) {}); !errors.Is(err, ErrNoGuestSource) {
		t.Errorf("WatchGuests(counter): %v", err)
	}
	if err := h.WatchGuests(ctx, "nope", nil, func([]sdk.Guest) {}); !errors.Is(err, ErrNoGuestSource) {
		t.Errorf("WatchGuests(nope): %v", err)
	}
	if _, err := h.Validate(ctx, "vms", json.RawMessage(`{}`)); !errors.Is(err, emitter.ErrUnknownKind) {
		t.Errorf("Validate(vms): %v", err)
	}
	if _, err := h.Describe(ctx, "counter"); err != nil {
		t.Errorf("Describe(counter): %v", err)
	}
}

// Probe (plugins add) accepts a plugin that reports guests only.
func TestProbeGuestSource(t *testing.T) {
	t.Parallel()
	k, err := Probe(ctxT(t), builtin("vms", "guests"), 20*time.Second)
	if err != nil || k.Name != "vms" || k.Version != "0.3.0" {
		t.Fatalf("probe %+v, %v", k, err)
	}
}
