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
	// State is what the answering node knows of it: StateRunning,
	// StateOffline (a mirror of an emitter whose node is unreachable), or
	// its plugin's state (e.g. "failed") when that is not running; empty
	// when the node cannot tell (another node runs it and nobody here
	// watches it). Set on GET, not on create.
	State string `json:"state,omitempty"`
	// Activity is what its stream did lately as the answering node sees
	// it; nil when that node holds no copy of the stream.
	Activity *Activity `json:"activity,omitempty"`
	// Stopped is an emitter kept for its history whose plugin does not
	// run: its guest went away.
	Stopped bool `json:"stopped,omitempty"`
}

// Emitter states (Emitter.State) besides a plugin's own.
const (
	StateRunning = "running"
	StateOffline = "offline"
)

// Activity is an emitter stream's recent activity.
type Activity struct {
	// Head is the newest seq.
	Head uint64 `json:"head"`
	// LastEventAt is the time of the newest event kept in memory (absent
	// until the first event since the node started).
	LastEventAt time.Time `json:"last_event_at,omitzero"`
	// EventsPerSec is the rate over the last ActivityWindow.
	EventsPerSec float64 `json:"events_per_sec"`
	// Subscribers is the number of open SSE/WebSocket subscriptions here.
	Subscribers int `json:"subscribers"`
}

// ActivityWindow is the span Activity.EventsPerSec averages over.
const ActivityWindow = 10 * time.Second

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
