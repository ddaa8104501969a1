package natsbus

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// rpcRequest is one call from a node to the node that owns an emitter.
type rpcRequest struct {
	Op     string                 `json:"op"`
	ID     string                 `json:"id,omitempty"`
	Name   string                 `json:"name,omitempty"`
	Args   json.RawMessage        `json:"args,omitempty"`
	Create *emitter.CreateRequest `json:"create,omitempty"`
	After  uint64                 `json:"after,omitempty"`
	Before uint64                 `json:"before,omitempty"`
	Limit  int                    `json:"limit,omitempty"`
}

// rpcReply is its answer.
type rpcReply struct {
	Spec   *emitter.Spec   `json:"spec,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Events []*event.Event  `json:"events,omitempty"`
	Head   uint64          `json:"head,omitempty"`
	Error  *rpcError       `json:"error,omitempty"`
}

// rpcError carries a domain error across nodes, so the node asked answers
// its client exactly as the owner would have.
type rpcError struct {
	Code    string               `json:"code"`
	Message string               `json:"message"`
	Fields  []emitter.FieldError `json:"fields,omitempty"`
	Command string               `json:"command,omitempty"`
}

// The one mapping between domain errors and their codes on the bus.
var rpcCodes = []struct {
	code string
	err  error
}{
	{"not_found", emitter.ErrNotFound},
	{"stream_not_found", stream.ErrNotFound},
	{"exists", emitter.ErrExists},
	{"unknown_kind", emitter.ErrUnknownKind},
	{"unknown_command", emitter.ErrUnknownCommand},
	{"unavailable", emitter.ErrUnavailable},
	{"store_unavailable", stream.ErrStoreUnavailable},
	{"closed", stream.ErrClosed},
}

func encodeError(err error) *rpcError {
	var (
		ve *emitter.ValidationError
		ce *emitter.CommandError
	)
	switch {
	case errors.As(err, &ve):
		return &rpcError{Code: "invalid", Message: ve.Error(), Fields: ve.Fields}
	case errors.As(err, &ce):
		return &rpcError{Code: "command_failed", Message: ce.Message, Command: ce.Code}
	}
	for _, c := range rpcCodes {
		if errors.Is(err, c.err) {
			return &rpcError{Code: c.code, Message: err.Error()}
		}
	}
	return &rpcError{Code: "internal", Message: err.Error()}
}

// remoteError is an owner's error: its message, and the domain error it
// wraps so errors.Is and the HTTP mapping treat it as the owner did.
type remoteError struct {
	node, msg string
	wrapped   error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.wrapped }

func (e *rpcError) decode(node string) error {
	switch e.Code {
	case "invalid":
		return &emitter.ValidationError{Fields: e.Fields}
	case "command_failed":
		return &emitter.CommandError{Code: e.Command, Message: e.Message}
	}
	for _, c := range rpcCodes {
		if c.code == e.Code {
			return &remoteError{node: node, msg: e.Message, wrapped: c.err}
		}
	}
	return &remoteError{node: node, msg: fmt.Sprintf("node %s: %s", node, e.Message), wrapped: cluster.ErrRemote}
}
