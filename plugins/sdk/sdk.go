// Package sdk is what a sidestream plugin author imports.
//
// A plugin serves one emitter kind. It implements Plugin (and Commander if
// it accepts commands) and calls Serve from main. A plugin that discovers
// guests instead implements GuestSource and calls ServeGuestSource (or
// implements both and calls Serve). The host runs the plugin
// as a subprocess, multiplexes many emitter instances into it, persists the
// events and checkpoint of every batch in one transaction, and restarts an
// instance from its last durable checkpoint after any crash. Plugin authors
// never see protobuf or gRPC.
package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIVersion is the plugin API version this SDK speaks (the go-plugin
// handshake protocol version).
const APIVersion = 1

// Description tells the host what a plugin serves.
type Description struct {
	Name        string
	Version     string
	Description string
	// ConfigSchema is a JSON Schema (draft 2020-12) for an instance config.
	// Serve validates every config against it before Validate is called.
	ConfigSchema json.RawMessage
	Commands     []CommandSpec
	EventTypes   []string
}

// CommandSpec describes a command accepted by a Commander.
type CommandSpec struct {
	Name        string
	Description string
}

// Event is one event produced by an instance. The host assigns its seq.
type Event struct {
	Type string
	// Data is the JSON payload.
	Data json.RawMessage
	// Time defaults to the time the SDK sends the batch.
	Time time.Time
}

// Batch is a group of events plus, optionally, the checkpoint that holds
// once they are stored. A nil Checkpoint leaves the stored one unchanged.
type Batch struct {
	Events     []Event
	Checkpoint []byte
}

// Instance is one emitter instance as the host hands it to the plugin.
type Instance struct {
	ID     string
	Config json.RawMessage
	// Checkpoint is the last durable checkpoint (nil on first start). For
	// Command it is the latest checkpoint the host has accepted.
	Checkpoint []byte
}

// Output receives an instance's batches. Emit blocks until the host can
// take the batch (back-pressure) and fails once the instance is stopped.
type Output interface {
	Emit(ctx context.Context, b Batch) error
}

// Plugin is the interface every plugin implements.
type Plugin interface {
	Describe() Description
	// Validate normalizes a config that already passed ConfigSchema.
	// Return a *ValidationError to report field errors.
	Validate(ctx context.Context, config json.RawMessage) (json.RawMessage, error)
	// Run produces the instance's events until ctx is done. Returning nil
	// after ctx is done is a clean stop; any other return is a failure and
	// the host restarts the instance from its last durable checkpoint.
	Run(ctx context.Context, inst Instance, out Output) error
}

// Commander is implemented by plugins that accept commands (fibonacci's
// next, previous, reset). Command must derive the new state from
// inst.Checkpoint and return it as Result.Batch.Checkpoint; the host stores
// events and checkpoint in one transaction before it answers the caller.
type Commander interface {
	Command(ctx context.Context, inst Instance, name string, args json.RawMessage) (CommandResult, error)
}

// CommandResult is what a command returns.
type CommandResult struct {
	// Result is the JSON answer shown to the caller.
	Result json.RawMessage
	Batch  Batch
}

// FieldError is one invalid field of a config or command argument.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field; the host shows it as a 400.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "invalid config: " + strings.Join(parts, "; ")
}

// Invalid is a shorthand for a ValidationError with one field.
func Invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// ErrUnknownCommand is returned (wrapped) by a Commander for a command it
// does not know; the host answers 404.
var ErrUnknownCommand = errors.New("unknown command")

// CommandError is a command failure the caller caused (bad arguments); the
// host answers 400 with Code and Message.
type CommandError struct {
	Code    string
	Message string
}

func (e *CommandError) Error() string { return e.Code + ": " + e.Message }
