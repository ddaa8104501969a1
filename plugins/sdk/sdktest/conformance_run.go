package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// maxBatches bounds every loop that reads batches.
const maxBatches = 1000

func (c *conformance) events(t *testing.T) {
	d := c.description(t)
	ctx := c.ctx(t)
	r := c.h.Run(ctx, sdk.Instance{ID: c.nextID(t), Config: c.runConfig(t)})
	defer r.Stop()
	b := c.firstEvents(t, r)
	for _, e := range b.Events {
		c.checkEvent(t, d, e)
	}
}

// firstEvents reads until a batch with events, keeping checkpoints.
func (c *conformance) firstEvents(t *testing.T, r *Run) sdk.Batch {
	t.Helper()
	ctx := c.ctx(t)
	for range maxBatches {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v (want a batch of events)", err)
		}
		if b.Checkpoint != nil {
			c.checkpoints = append(c.checkpoints, b.Checkpoint)
		}
		if len(b.Events) > 0 {
			return b
		}
	}
	t.Fatalf("no events in %d batches", maxBatches)
	return sdk.Batch{}
}

func (c *conformance) checkEvent(t *testing.T, d sdk.Description, e sdk.Event) {
	t.Helper()
	if !slices.Contains(d.EventTypes, e.Type) {
		t.Errorf("event type %q not in Describe().EventTypes %v", e.Type, d.EventTypes)
	}
	if !json.Valid(e.Data) {
		t.Errorf("event %q data is not valid JSON: %q", e.Type, e.Data)
	}
}

// stop: after Stop the plugin's Run returns and the stream ends cleanly.
func (c *conformance) stop(t *testing.T) {
	ctx := c.ctx(t)
	r := c.h.Run(ctx, sdk.Instance{ID: c.nextID(t), Config: c.runConfig(t)})
	if c.s.NeedsEvents {
		c.firstEvents(t, r) // stop a run that is busy producing
	} else if err := c.h.started(ctx, r); err != nil {
		t.Fatalf("Run never started: %v", err)
	}
	r.Stop()
	if err := r.Wait(ctx); err != nil {
		t.Errorf("Run did not end cleanly after Stop (within %s): %v", HangGuard, err)
	}
	if err := c.h.waitInstances(ctx, 0); err != nil {
		t.Errorf("after Stop: %v", err)
	}
}

// cancel: when the host hangs up (ctx cancelled), the plugin's Run returns.
func (c *conformance) cancel(t *testing.T) {
	ctx := c.ctx(t)
	runCtx, cancel := context.WithCancel(ctx)
	r := c.h.Run(runCtx, sdk.Instance{ID: c.nextID(t), Config: c.runConfig(t)})
	if c.s.NeedsEvents {
		c.firstEvents(t, r)
	} else if err := c.h.started(ctx, r); err != nil {
		cancel()
		t.Fatalf("Run never started: %v", err)
	}
	cancel()
	if err := c.h.waitInstances(ctx, 0); err != nil {
		t.Errorf("plugin Run did not return after the host cancelled: %v", err)
	}
	<-r.Done()
}

func (c *conformance) commands(t *testing.T) {
	d := c.description(t)
	ctx := c.ctx(t)
	inst := sdk.Instance{ID: c.nextID(t), Config: c.runConfig(t)}
	for _, cmd := range d.Commands {
		res, err := c.h.Command(ctx, inst, cmd.Name, c.s.CommandArgs[cmd.Name])
		if err != nil {
			t.Errorf("Command(%s) listed in Describe: %v", cmd.Name, err)
			continue
		}
		if len(res.Result) > 0 && !json.Valid(res.Result) {
			t.Errorf("Command(%s) result is not valid JSON: %q", cmd.Name, res.Result)
		}
		for _, e := range res.Batch.Events {
			c.checkEvent(t, d, e)
		}
		if res.Batch.Checkpoint != nil {
			// The host hands the latest accepted checkpoint to the next command.
			inst.Checkpoint = res.Batch.Checkpoint
			c.checkpoints = append(c.checkpoints, res.Batch.Checkpoint)
		}
	}
	_, err := c.h.Command(ctx, inst, "sdktest-no-such-command", nil)
	if !errors.Is(err, sdk.ErrUnknownCommand) {
		t.Errorf("unknown command: got %v, want sdk.ErrUnknownCommand", err)
	}
}

// resume: every checkpoint the plugin produced starts a new Run (and, for
// a Commander, serves its commands) without failing.
func (c *conformance) resume(t *testing.T) {
	cps := append(slices.Clone(c.s.Checkpoints), c.checkpoints...)
	if len(cps) > 5 {
		cps = cps[len(cps)-5:] // the latest ones are the likeliest to be used
	}
	t.Logf("resuming from %d checkpoints", len(cps))
	d := c.description(t)
	for _, cp := range cps {
		ctx := c.ctx(t)
		inst := sdk.Instance{ID: c.nextID(t), Config: c.runConfig(t), Checkpoint: cp}
		r := c.h.Run(ctx, inst)
		if c.s.NeedsEvents {
			c.firstEvents(t, r)
		} else if err := c.h.started(ctx, r); err != nil {
			t.Errorf("Run from checkpoint %s: %v", cp, err)
		}
		r.Stop()
		if err := r.Wait(ctx); err != nil {
			t.Errorf("Run from checkpoint %s: %v", cp, err)
		}
		for _, cmd := range d.Commands {
			if _, err := c.h.Command(ctx, inst, cmd.Name, c.s.CommandArgs[cmd.Name]); err != nil {
				t.Errorf("Command(%s) from checkpoint %s: %v", cmd.Name, cp, err)
			}
		}
	}
}

// commandBatch: the listed commands, twice over with an unknown command
// between, sent as one CommandBatch answer what the same commands sent one
// by one with the host's checkpoint threading answer: the same errors and
// event types, and the unknown one fails alone. The checkpoint comes once,
// on the last outcome that moved it, equal to the one-by-one one there.
func (c *conformance) commandBatch(t *testing.T) {
	d := c.description(t)
	ctx := c.ctx(t)
	var cmds []BatchCommand
	for _, cmd := range d.Commands {
		cmds = append(cmds, BatchCommand{Name: cmd.Name, Args: c.s.CommandArgs[cmd.Name]})
	}
	cmds = append(append(slices.Clone(cmds), BatchCommand{Name: "sdktest-no-such-command"}), cmds...)
	inst := sdk.Instance{ID: c.nextID(t), Config: c.runConfig(t)}
	got, err := c.h.CommandBatch(ctx, inst, cmds)
	if err != nil {
		t.Fatalf("CommandBatch: %v", err)
	}
	wants := make([]BatchOutcome, len(cmds))
	lastMove := -1
	for i, cmd := range cmds {
		want, wantErr := c.h.Command(ctx, inst, cmd.Name, cmd.Args)
		wants[i] = BatchOutcome{Result: want, Err: wantErr}
		if wantErr == nil && want.Batch.Checkpoint != nil {
			inst.Checkpoint, lastMove = want.Batch.Checkpoint, i
		}
	}
	for i, cmd := range cmds {
		g, want := got[i], wants[i]
		if (g.Err == nil) != (want.Err == nil) || errors.Is(g.Err, sdk.ErrUnknownCommand) != errors.Is(want.Err, sdk.ErrUnknownCommand) {
			t.Errorf("batched command %d (%s): error %v, one by one: %v", i, cmd.Name, g.Err, want.Err)
			continue
		}
		if want.Err != nil {
			continue
		}
		var wantCP []byte
		if i == lastMove {
			wantCP = want.Result.Batch.Checkpoint
		}
		if !bytes.Equal(g.Result.Batch.Checkpoint, wantCP) || (g.Result.Batch.Checkpoint == nil) != (wantCP == nil) {
			t.Errorf("batched command %d (%s): checkpoint %q, want %q (only the batch's last move carries one)", i, cmd.Name, g.Result.Batch.Checkpoint, wantCP)
		}
		if !slices.EqualFunc(g.Result.Batch.Events, want.Result.Batch.Events, func(a, b sdk.Event) bool { return a.Type == b.Type }) {
			t.Errorf("batched command %d (%s): events %v, one by one: %v", i, cmd.Name, g.Result.Batch.Events, want.Result.Batch.Events)
		}
	}
}
