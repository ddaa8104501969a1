package emitter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/sidestream/sidestream/core/event"
)

// Batch is what a running instance produced: events plus, optionally, the
// checkpoint that holds once they are stored (nil: unchanged).
type Batch struct {
	Events     []event.Draft
	Checkpoint []byte
}

// Sink is where a Runner delivers an instance's batches.
type Sink interface {
	// Deliver stores and publishes b; it returns once b is durable. A
	// Runner delivers one instance's batches one at a time, in order.
	Deliver(ctx context.Context, b Batch) error
	// Checkpoint returns the durable checkpoint to (re)start from.
	Checkpoint(ctx context.Context) ([]byte, error)
}

// Kind describes an emitter kind as its plugin reports it.
type Kind struct {
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	Description  string          `json:"description,omitempty"`
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
	Commands     []CommandSpec   `json:"commands,omitempty"`
	EventTypes   []string        `json:"event_types,omitempty"`
}

// CommandSpec names a command a kind accepts.
type CommandSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// CommandResult is a command's answer and what it changed.
type CommandResult struct {
	Result json.RawMessage
	Batch  Batch
}

// Runner runs instances in plugin processes (sidecar/internal/pluginhost
// implements it). It supervises them: after a plugin crash it restarts each
// instance from sink.Checkpoint, until Stop.
type Runner interface {
	Describe(ctx context.Context, kind string) (Kind, error)
	// Validate returns the normalized config, a *ValidationError, or
	// ErrUnknownKind.
	Validate(ctx context.Context, kind string, config json.RawMessage) (json.RawMessage, error)
	// Start begins supervising an instance; it does not wait for events.
	Start(ctx context.Context, kind, id string, config json.RawMessage, sink Sink) error
	// Stop ends an instance and waits (bounded by ctx) until it stopped.
	Stop(ctx context.Context, kind, id string) error
	// CommandBatch runs cmds in order on one instance, the first against
	// checkpoint (the latest accepted one), each later one against the
	// checkpoint the previous successful one left. It answers one outcome
	// per command; a failed command changed nothing. Only the last outcome
	// that moved the checkpoint need carry it (the SDK sends no other):
	// what holds after the batch is all that is stored. Outcome errors:
	// ErrUnknownCommand, *CommandError, ErrUnavailable, or any other (a
	// plugin failure). The error fails every command (none ran).
	CommandBatch(ctx context.Context, kind, id string, config json.RawMessage, checkpoint []byte, cmds []Cmd) ([]CmdOutcome, error)
}

// Cmd is one command of a batch.
type Cmd struct {
	Name string
	Args json.RawMessage
}

// CmdOutcome is one command's answer in a batch: its result, or Err.
type CmdOutcome struct {
	CommandResult
	Err error
}

// FieldError is one invalid field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request or config.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.sentence())
	}
	return "invalid config: " + strings.Join(parts, "; ")
}

// sentence joins the field and its message: "rate must be > 0" when the
// message is a predicate, "path: open …: no such file" when it is not.
func (f FieldError) sentence() string {
	switch {
	case f.Field == "":
		return f.Message
	case strings.HasPrefix(f.Message, "must ") || strings.HasPrefix(f.Message, "is "):
		return f.Field + " " + f.Message
	}
	return f.Field + ": " + f.Message
}

// ErrUnknownCommand means the kind has no such command.
var ErrUnknownCommand = errors.New("unknown command")

// CommandError is a command failure the caller caused (bad arguments).
type CommandError struct {
	Code    string
	Message string
}

func (e *CommandError) Error() string { return e.Code + ": " + e.Message }
