// Package fibonacci is the built-in "fibonacci" emitter (the pexservice
// seed): a Fibonacci cursor driven by commands current, next, previous and
// reset, whose state survives restarts through the host's checkpoint.
//
// State is the checkpoint JSON {"position":N}. The plugin keeps F(N) and
// F(N-1) as decimal integers of any length, so every step is one addition
// or subtraction (no overflow at any position; see decimal.go), and
// computes them from N after a restart (see atPosition). At position 0,
// previous is F(-1) = 1, which keeps next uniform: F(1) = F(0) + F(-1).
// previous at position 0 stays at position 0; next stops at MaxPosition.
//
// Every command answers {"position":N,"value":"<F(N)>"}; next, previous and
// reset also emit one "fib" event with the same data and the new checkpoint.
// Run emits nothing: the host keeps the instance alive for commands.
package fibonacci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// Name is the kind this plugin serves.
const Name = "fibonacci"

// EventType is the type of the events commands emit.
const EventType = "fib"

// Command names.
const (
	CmdCurrent  = "current"
	CmdNext     = "next"
	CmdPrevious = "previous"
	CmdReset    = "reset"
)

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "fibonacci",
  "type": "object",
  "properties": {},
  "additionalProperties": false
}`

// ErrBadCheckpoint reports a checkpoint this plugin cannot have written.
var ErrBadCheckpoint = errors.New("fibonacci: bad checkpoint")

// Plugin implements sdk.Plugin and sdk.Commander.
type Plugin struct {
	last lastStates
}

// New returns the fibonacci plugin.
func New() sdk.Plugin { return &Plugin{} }

// Describe implements sdk.Plugin.
func (*Plugin) Describe() sdk.Description {
	return sdk.Description{
		Name:         Name,
		Version:      "1.0.0",
		Description:  "a Fibonacci cursor moved by commands; state persists across restarts",
		ConfigSchema: json.RawMessage(schema),
		Commands: []sdk.CommandSpec{
			{Name: CmdCurrent, Description: "the current position and value"},
			{Name: CmdNext, Description: "advance one position"},
			{Name: CmdPrevious, Description: "go back one position (stays at 0)"},
			{Name: CmdReset, Description: "go back to position 0"},
		},
		EventTypes: []string{EventType},
	}
}

// Validate implements sdk.Plugin: the only valid config is an empty object.
func (*Plugin) Validate(_ context.Context, config json.RawMessage) (json.RawMessage, error) {
	if len(config) == 0 || string(config) == "null" {
		return json.RawMessage(`{}`), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(config, &m); err != nil {
		return nil, sdk.Invalid("", "config must be an object: %v", err)
	}
	for k := range m {
		return nil, sdk.Invalid(k, "unknown field (fibonacci takes no config)")
	}
	return json.RawMessage(`{}`), nil
}

// Run implements sdk.Plugin: fibonacci only changes through commands.
func (*Plugin) Run(ctx context.Context, _ sdk.Instance, _ sdk.Output) error {
	<-ctx.Done()
	return nil
}

// Command implements sdk.Commander.
func (p *Plugin) Command(_ context.Context, inst sdk.Instance, name string, args json.RawMessage) (sdk.CommandResult, error) {
	if err := checkNoArgs(args); err != nil {
		return sdk.CommandResult{}, err
	}
	st, err := p.last.decode(inst.ID, inst.Checkpoint)
	if err != nil {
		return sdk.CommandResult{}, err
	}
	switch name {
	case CmdCurrent:
		return result(st, false)
	case CmdNext:
		if err := st.step(true); err != nil {
			return sdk.CommandResult{}, &sdk.CommandError{Code: "position_limit",
				Message: fmt.Sprintf("position %d is the last this emitter keeps; reset to start again", MaxPosition)}
		}
	case CmdPrevious:
		_ = st.step(false) // back from 0 stays at 0; only next can fail
	case CmdReset:
		st = startDecoded()
	default:
		return sdk.CommandResult{}, fmt.Errorf("fibonacci: %q: %w", name, sdk.ErrUnknownCommand)
	}
	res, err := result(st, true)
	if err == nil {
		p.last.remember(inst.ID, res.Batch.Checkpoint, st)
	}
	return res, err
}

func checkNoArgs(args json.RawMessage) error {
	switch string(args) {
	case "", "null", "{}":
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil || len(m) > 0 {
		return &sdk.CommandError{Code: "bad_args", Message: "fibonacci commands take no arguments"}
	}
	return nil
}

// result answers {"position":N,"value":"F(N)"} and, with emit, the event
// and checkpoint. The JSON is written by hand: the values are decimal
// digits, which need no escaping, and at high positions they are long.
func result(st decoded, emit bool) (sdk.CommandResult, error) {
	data := make([]byte, 0, len(st.curS)+48)
	data = strconv.AppendUint(append(data, `{"position":`...), st.Position, 10)
	data = append(append(append(data, `,"value":"`...), st.curS...), `"}`...)
	res := sdk.CommandResult{Result: data}
	if emit {
		res.Batch = sdk.Batch{Events: []sdk.Event{{Type: EventType, Data: data}}, Checkpoint: st.encode()}
	}
	return res, nil
}
