package sdktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scripted is a plugin whose behaviour each test sets, to check that the
// harness reports what the adapter sends.
type scripted struct {
	validate func(json.RawMessage) (json.RawMessage, error)
	run      func(context.Context, sdk.Instance, sdk.Output) error
	command  func(sdk.Instance, string) (sdk.CommandResult, error)
}

func (s scripted) Describe() sdk.Description {
	return sdk.Description{
		Name: "scripted", Version: "1", EventTypes: []string{"e"},
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer","maximum":5}}}`),
		Commands:     []sdk.CommandSpec{{Name: "go"}},
	}
}

func (s scripted) Validate(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	return s.validate(c)
}

func (s scripted) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	return s.run(ctx, inst, out)
}

func (s scripted) Command(_ context.Context, inst sdk.Instance, name string, _ json.RawMessage) (sdk.CommandResult, error) {
	return s.command(inst, name)
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d, err := sdktest.New(t, scripted{}).Describe(t.Context())
	if err != nil || d.Name != "scripted" || len(d.Commands) != 1 || d.Commands[0].Name != "go" || d.EventTypes[0] != "e" {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
}

func TestValidateErrors(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, scripted{validate: func(c json.RawMessage) (json.RawMessage, error) {
		if string(c) == `{"n":3}` {
			return nil, sdk.Invalid("n", "odd")
		}
		return c, nil
	}})
	var ve *sdk.ValidationError
	// From the schema (the adapter checks it before the plugin runs).
	if _, err := h.Validate(t.Context(), json.RawMessage(`{"n":9}`)); !errors.As(err, &ve) || ve.Fields[0].Field != "n" {
		t.Errorf("schema violation: %v", err)
	}
	// From the plugin.
	if _, err := h.Validate(t.Context(), json.RawMessage(`{"n":3}`)); !errors.As(err, &ve) || ve.Fields[0].Message != "odd" {
		t.Errorf("plugin field error: %v", err)
	}
	if got, err := h.Validate(t.Context(), json.RawMessage(`{"n":2}`)); err != nil || string(got) != `{"n":2}` {
		t.Errorf("valid: %s, %v", got, err)
	}
}

func TestRunBatchesAndCheckpoint(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, scripted{run: func(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
		// Echo the checkpoint back, then one batch with no checkpoint.
		if err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{{Type: "e", Data: json.RawMessage(`1`)}}, Checkpoint: inst.Checkpoint}); err != nil {
			return err
		}
		if err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{{Type: "e", Data: json.RawMessage(`2`)}}}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}})
	ctx := t.Context()
	r := h.Run(ctx, sdk.Instance{ID: "x", Checkpoint: []byte("cp")})
	b1, err := r.Next(ctx)
	if err != nil || string(b1.Checkpoint) != "cp" || string(b1.Events[0].Data) != "1" || b1.Events[0].Time.IsZero() {
		t.Fatalf("first batch %+v, %v", b1, err)
	}
	b2, err := r.Next(ctx)
	if err != nil || b2.Checkpoint != nil || string(b2.Events[0].Data) != "2" {
		t.Fatalf("second batch %+v, %v (nil checkpoint must stay nil)", b2, err)
	}
	r.Stop()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("clean stop reported %v", err)
	}
	if _, err := r.Next(ctx); !errors.Is(err, sdktest.ErrEnded) {
		t.Fatalf("Next after stop = %v, want ErrEnded", err)
	}
}

func TestRunFailureSurfaces(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, scripted{run: func(context.Context, sdk.Instance, sdk.Output) error {
		return errors.New("disk on fire")
	}})
	r := h.Run(t.Context(), sdk.Instance{ID: "x"})
	if _, err := r.Next(t.Context()); err == nil || errors.Is(err, sdktest.ErrEnded) {
		t.Fatalf("Next = %v, want the run's failure", err)
	}
	if err := r.Wait(t.Context()); err == nil {
		t.Fatal("Wait reported a clean end for a failed run")
	}
}

func TestCommandMapping(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, scripted{command: func(inst sdk.Instance, name string) (sdk.CommandResult, error) {
		switch name {
		case "go":
			return sdk.CommandResult{Result: json.RawMessage(`{"ok":true}`), Batch: sdk.Batch{Checkpoint: append(inst.Checkpoint, '!')}}, nil
		case "bad":
			return sdk.CommandResult{}, &sdk.CommandError{Code: "bad_args", Message: "no"}
		}
		return sdk.CommandResult{}, sdk.ErrUnknownCommand
	}})
	ctx := t.Context()
	inst := sdk.Instance{ID: "x", Checkpoint: []byte("cp")}
	res, err := h.Command(ctx, inst, "go", nil)
	if err != nil || string(res.Result) != `{"ok":true}` || string(res.Batch.Checkpoint) != "cp!" {
		t.Errorf("go = %+v, %v", res, err)
	}
	var ce *sdk.CommandError
	if _, err := h.Command(ctx, inst, "bad", nil); !errors.As(err, &ce) || ce.Code != "bad_args" || ce.Message != "no" {
		t.Errorf("bad = %v, want CommandError bad_args", err)
	}
	if _, err := h.Command(ctx, inst, "nope", nil); !errors.Is(err, sdk.ErrUnknownCommand) {
		t.Errorf("nope = %v, want ErrUnknownCommand", err)
	}
}

// CommandBatch threads the checkpoint through the commands in order and
// isolates failures: a caller error, an unknown command, a plugin error and
// a panic each fail their own outcome and leave the checkpoint alone.
func TestCommandBatchThreadsCheckpointAndIsolatesFailures(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, scripted{command: func(inst sdk.Instance, name string) (sdk.CommandResult, error) {
		switch name {
		case "go":
			cp := append(append([]byte(nil), inst.Checkpoint...), '!')
			return sdk.CommandResult{Result: json.RawMessage(`"` + string(cp) + `"`),
				Batch: sdk.Batch{Events: []sdk.Event{{Type: "e", Data: json.RawMessage(`1`)}}, Checkpoint: cp}}, nil
		case "look":
			return sdk.CommandResult{Result: json.RawMessage(`"` + string(inst.Checkpoint) + `"`)}, nil
		case "bad":
			return sdk.CommandResult{}, &sdk.CommandError{Code: "bad_args", Message: "no"}
		case "broken":
			return sdk.CommandResult{}, errors.New("disk on fire")
		case "panic":
			panic("boom")
		}
		return sdk.CommandResult{}, sdk.ErrUnknownCommand
	}})
	cmds := []sdktest.BatchCommand{{Name: "go"}, {Name: "bad"}, {Name: "go"}, {Name: "nope"}, {Name: "broken"},
		{Name: "panic"}, {Name: "look"}, {Name: "go"}}
	got, err := h.CommandBatch(t.Context(), sdk.Instance{ID: "x", Checkpoint: []byte("cp")}, cmds)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`"cp!"`, "", `"cp!!"`, "", "", "", `"cp!!"`, `"cp!!!"`}
	for i, o := range got {
		if string(o.Result.Result) != want[i] {
			t.Errorf("outcome %d (%s): result %s, want %s (err %v)", i, cmds[i].Name, o.Result.Result, want[i], o.Err)
		}
	}
	var ce *sdk.CommandError
	if !errors.As(got[1].Err, &ce) || ce.Code != "bad_args" {
		t.Errorf("bad: %v, want CommandError bad_args", got[1].Err)
	}
	if !errors.Is(got[3].Err, sdk.ErrUnknownCommand) {
		t.Errorf("nope: %v, want ErrUnknownCommand", got[3].Err)
	}
	if got[4].Err == nil || got[5].Err == nil || errors.As(got[4].Err, &ce) || errors.As(got[5].Err, &ce) {
		t.Errorf("broken, panic: %v, %v: want plain failures", got[4].Err, got[5].Err)
	}
	if got[6].Result.Batch.Checkpoint != nil || len(got[7].Result.Batch.Events) != 1 || string(got[7].Result.Batch.Checkpoint) != "cp!!!" {
		t.Errorf("look %+v, last go %+v", got[6].Result, got[7].Result)
	}
	// The host keeps only the checkpoint that holds after the batch: the
	// ones in between do not cross the pipe.
	for _, i := range []int{0, 2} {
		if cp := got[i].Result.Batch.Checkpoint; cp != nil || len(got[i].Result.Batch.Events) != 1 {
			t.Errorf("go #%d: checkpoint %q, events %d: want only its event (the last go carries the checkpoint)", i, cp, len(got[i].Result.Batch.Events))
		}
	}
	if _, err := h.CommandBatch(t.Context(), sdk.Instance{ID: "x"}, make([]sdktest.BatchCommand, sdk.MaxBatchCommands+1)); err == nil {
		t.Error("a batch over MaxBatchCommands was accepted")
	}
}
