package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sidestream/sidestream/core/emitter"
	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// commandBatch runs cmds in one CommandBatch round trip. One command goes
// as a plain Command (same cost, and its span keeps the name operators
// know); a process that answered CommandBatch Unimplemented (an older
// SDK) gets one Command per command from then on, and a batch whose
// answer is too large for one message goes again as one Command each.
func (k *kindProc) commandBatch(ctx context.Context, id string, config json.RawMessage, checkpoint []byte, cmds []emitter.Cmd) ([]emitter.CmdOutcome, error) {
	p, err := k.ready(ctx)
	if err != nil {
		return nil, fmt.Errorf("command batch: %w", err)
	}
	if len(cmds) == 1 || p.noBatch.Load() {
		return commandEach(ctx, p, id, config, checkpoint, cmds), nil
	}
	req := &pluginpb.CommandBatchRequest{InstanceId: id, Config: config, Checkpoint: checkpoint,
		Commands: make([]*pluginpb.BatchedCommand, len(cmds)), ResultMayBeEvent: true}
	for i, c := range cmds {
		req.Commands[i] = &pluginpb.BatchedCommand{Name: c.Name, Args: c.Args}
	}
	resp, err := p.rpc.CommandBatch(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		if !p.noBatch.Swap(true) {
			k.h.log.Info("plugin has no CommandBatch (older SDK): one Command per command", "plugin", k.src.Name, "pid", p.pid)
		}
		return commandEach(ctx, p, id, config, checkpoint, cmds), nil
	}
	if status.Code(err) == codes.ResourceExhausted {
		// The answers together exceed one message (maxBatchBytes), which
		// one command each need not (fibonacci at high positions): the
		// commands change nothing until the host stores them, so they run
		// again one by one.
		return commandEach(ctx, p, id, config, checkpoint, cmds), nil
	}
	if err != nil {
		return nil, fmt.Errorf("command batch: %w", rpcErr(err))
	}
	outs := resp.GetOutcomes()
	if len(outs) != len(cmds) {
		return nil, fmt.Errorf("command batch: plugin %s answered %d outcomes to %d commands", k.src.Name, len(outs), len(cmds))
	}
	res := make([]emitter.CmdOutcome, len(cmds))
	for i, o := range outs {
		res[i].CommandResult, res[i].Err = outcome(cmds[i].Name, resultOf(o.GetResult(), o.GetResultIsEvent(), o.GetBatch()), o.GetBatch(), o.GetErrorCode(), o.GetErrorMessage())
		if f := o.GetFailure(); f != "" {
			res[i] = emitter.CmdOutcome{Err: fmt.Errorf("command %s: %w", cmds[i].Name, errors.New(f))}
		}
	}
	return res, nil
}

// commandEach is CommandBatch as one Command per command, threading the
// checkpoint as the SDK does.
func commandEach(ctx context.Context, p *proc, id string, config json.RawMessage, checkpoint []byte, cmds []emitter.Cmd) []emitter.CmdOutcome {
	res := make([]emitter.CmdOutcome, len(cmds))
	for i, c := range cmds {
		r, err := command(ctx, p, id, c.Name, config, checkpoint, c.Args)
		res[i] = emitter.CmdOutcome{CommandResult: r, Err: err}
		if err == nil && r.Batch.Checkpoint != nil {
			checkpoint = r.Batch.Checkpoint
		}
	}
	return res
}

func command(ctx context.Context, p *proc, id, name string, config json.RawMessage, checkpoint []byte, args json.RawMessage) (emitter.CommandResult, error) {
	resp, err := p.rpc.Command(ctx, &pluginpb.CommandRequest{InstanceId: id, Config: config, Checkpoint: checkpoint, Name: name, Args: args, ResultMayBeEvent: true})
	if err != nil {
		return emitter.CommandResult{}, fmt.Errorf("command %s: %w", name, rpcErr(err))
	}
	return outcome(name, resultOf(resp.GetResult(), resp.GetResultIsEvent(), resp.GetBatch()), resp.GetBatch(), resp.GetErrorCode(), resp.GetErrorMessage())
}

// resultOf is a command's result: the first event's data when the plugin
// sent it once (result_is_event, which the host allows on every call).
func resultOf(result []byte, isEvent bool, b *pluginpb.Batch) []byte {
	if isEvent && len(b.GetEvents()) > 0 {
		return b.GetEvents()[0].GetData()
	}
	return result
}

// outcome maps one command's answer: caller errors to the emitter
// package's, otherwise the result and what it changed.
func outcome(name string, result []byte, b *pluginpb.Batch, code, msg string) (emitter.CommandResult, error) {
	switch code {
	case "":
	case sdk.CodeUnknownCommand:
		return emitter.CommandResult{}, fmt.Errorf("%w: %s", emitter.ErrUnknownCommand, msg)
	default:
		return emitter.CommandResult{}, &emitter.CommandError{Code: code, Message: msg}
	}
	res := emitter.CommandResult{Result: result}
	if b != nil {
		res.Batch = toBatch(b)
	}
	return res, nil
}
