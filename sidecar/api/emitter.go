package api

import (
	"encoding/json"
	"time"
)

// Emitter is a stored emitter as the API shows it.
type Emitter struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	Config    json.RawMessage   `json:"config"`
	Labels    map[string]string `json:"labels,omitempty"`
	Retention Retention         `json:"retention"`
	CreatedAt time.Time         `json:"created_at"`
	// Node is the name of the node that runs the emitter's plugin in
	// cluster mode; empty on a single node.
	Node string `json:"node,omitempty"`
	// Shared marks the node's built-in emitters (magic, time, fib) that
	// the shared routes serve: they cannot be deleted.
	Shared bool `json:"shared,omitempty"`
}

// Retention is an emitter's history policy as the server applied it.
type Retention struct {
	// Persist keeps history in the store; without it only the in-memory
	// ring holds recent events.
	Persist   bool   `json:"persist"`
	MaxEvents int    `json:"max_events,omitempty"`
	MaxAge    string `json:"max_age,omitempty"` // a Go duration, "24h0m0s"
}

// RetentionRequest is a retention policy in a request: each field left
// out (nil, or empty MaxAge) keeps the server's default.
type RetentionRequest struct {
	Persist   *bool  `json:"persist,omitempty"`
	MaxEvents *int   `json:"max_events,omitempty"`
	MaxAge    string `json:"max_age,omitempty"` // a Go duration, "24h"
}

// CreateEmitter is the body of POST /api/v1/emitters.
type CreateEmitter struct {
	ID        string            `json:"id,omitempty"` // generated when empty
	Kind      string            `json:"kind"`
	Config    json.RawMessage   `json:"config,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Retention *RetentionRequest `json:"retention,omitempty"`
	// Node runs the emitter in cluster mode (default: the node asked).
	Node string `json:"node,omitempty"`
}

// EmitterPage is one page of GET /api/v1/emitters; Next, the after of
// the following page, is empty on the last page.
type EmitterPage struct {
	Items []Emitter `json:"items"`
	Next  string    `json:"next"`
}

// LogRequest is the body of PUT /log (all optional; a synthetic source
// at 10 lines per second by default).
type LogRequest struct {
	// ID is the emitter's id, chosen by the client (generated when empty).
	ID        string            `json:"id,omitempty"`
	Source    string            `json:"source,omitempty"` // "synthetic" or "file"
	Rate      *float64          `json:"rate,omitempty"`   // lines per second (synthetic)
	Path      string            `json:"path,omitempty"`   // file source
	Guest     string            `json:"guest,omitempty"`
	Retention *RetentionRequest `json:"retention,omitempty"`
}

// Created is the answer of PUT /log: the new emitter's id.
type Created struct {
	ID string `json:"id"`
}

// FibState is the answer of the /fib/* routes; Value is decimal.
type FibState struct {
	Position uint64 `json:"position"`
	Value    string `json:"value"`
}
