package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCounter() *Counter { return NewCounter(slog.New(slog.DiscardHandler)) }

// Conformance is the one test every plugin should have: it drives the
// plugin through the real SDK adapter and checks the whole contract.
func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.Conformance(t, newCounter(), sdktest.Suite{
		ValidConfigs: []json.RawMessage{
			json.RawMessage(`{}`), json.RawMessage(`{"interval":"10ms","step":5}`), json.RawMessage(`{"interval":"1000ms"}`),
		},
		InvalidConfigs: []json.RawMessage{
			json.RawMessage(`{"interval":"often"}`), json.RawMessage(`{"interval":"1ms"}`),
			json.RawMessage(`{"step":0}`), json.RawMessage(`{"step":1.5}`), json.RawMessage(`{"colour":"red"}`),
		},
		NeedsEvents: true,
		RunConfig:   json.RawMessage(`{"interval":"10ms"}`),
		Checkpoints: [][]byte{[]byte(`{"count":41}`)},
	})
}

func count(t *testing.T, data []byte) int64 {
	t.Helper()
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return cp.Count
}

func next(ctx context.Context, t *testing.T, r *sdktest.Run) sdk.Batch {
	t.Helper()
	b, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || string(b.Events[0].Data) != string(b.Checkpoint) {
		t.Fatalf("batch %+v: want one event whose data equals the checkpoint", b)
	}
	return b
}

// A restarted instance continues from its checkpoint: no gap, no repeat.
func TestResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, newCounter())
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()
	cfg := json.RawMessage(`{"interval":"10ms","step":2}`)

	r := h.Run(ctx, sdk.Instance{ID: "c", Config: cfg, Checkpoint: []byte(`{"count":40}`)})
	for want := int64(42); want <= 46; want += 2 {
		if got := count(t, next(ctx, t, r).Checkpoint); got != want {
			t.Fatalf("count %d, want %d", got, want)
		}
	}
	r.Stop()
}

func TestReset(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, newCounter())
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()
	inst := sdk.Instance{ID: "c", Config: json.RawMessage(`{"interval":"10ms"}`), Checkpoint: []byte(`{"count":1000}`)}
	r := h.Run(ctx, inst)
	defer r.Stop()
	if got := count(t, next(ctx, t, r).Checkpoint); got != 1001 {
		t.Fatalf("first count %d, want 1001", got)
	}

	res, err := h.Command(ctx, inst, "reset", nil)
	if err != nil {
		t.Fatal(err)
	}
	if count(t, res.Result) != 0 || count(t, res.Batch.Checkpoint) != 0 || len(res.Batch.Events) != 1 {
		t.Fatalf("reset = %+v, want count 0 with one event and checkpoint", res)
	}
	// The running instance counts on from 0: a batch sent before the reset
	// may still arrive, so read until the count has dropped (bounded).
	for range 100 {
		if count(t, next(ctx, t, r).Checkpoint) < 1000 {
			return
		}
	}
	t.Fatal("running instance kept counting from 1000 after reset")
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, newCounter())
	inst := sdk.Instance{ID: "c", Config: json.RawMessage(`{}`)}
	if _, err := h.Command(t.Context(), inst, "double", nil); !errors.Is(err, sdk.ErrUnknownCommand) {
		t.Errorf("unknown command: %v", err)
	}
	var ce *sdk.CommandError
	if _, err := h.Command(t.Context(), inst, "reset", json.RawMessage(`{"to":5}`)); !errors.As(err, &ce) || ce.Code != "bad_args" {
		t.Errorf("reset with args: %v, want CommandError bad_args", err)
	}
}
