// Package emitter manages emitter instances: their specs, their plugin
// runs, their commands, and the streams their events go to.
package emitter

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Spec is a stored emitter. It survives restarts until deleted.
type Spec struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	Config    json.RawMessage   `json:"config"`
	Labels    map[string]string `json:"labels,omitempty"`
	Retention Retention         `json:"retention"`
	CreatedAt time.Time         `json:"created_at"`
	// Tenant owns the emitter when auth is on (the creating token's
	// tenant); empty for the shared emitters every tenant reads.
	Tenant string `json:"tenant,omitempty"`
	// Stopped is an emitter kept for its history whose plugin does not
	// run (a guest that went away); Restore leaves it stopped.
	Stopped bool `json:"stopped,omitempty"`
	// Node is the node that runs the emitter, in cluster mode (set by the
	// cluster layer on what it returns; never stored by the Manager).
	Node string `json:"node,omitempty"`
}

// Retention bounds an emitter's history.
type Retention struct {
	// Persist keeps history in the store; without it only the in-memory
	// ring holds recent events.
	Persist   bool     `json:"persist"`
	MaxEvents int      `json:"max_events,omitempty"`
	MaxAge    Duration `json:"max_age,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1h30m" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return errors.New(`duration must be a string like "24h"`)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// SpecStore keeps emitter specs and checkpoints.
type SpecStore interface {
	PutSpec(ctx context.Context, s Spec) error
	// DeleteSpec removes the spec and its checkpoint.
	DeleteSpec(ctx context.Context, id string) error
	ListSpecs(ctx context.Context) ([]Spec, error)
	// Checkpoint returns the durable checkpoint (nil if none).
	Checkpoint(ctx context.Context, id string) ([]byte, error)
}

// Errors of the domain; sidecar/internal/httpapi maps them to HTTP status.
var (
	ErrNotFound    = errors.New("emitter not found")
	ErrUnknownKind = errors.New("unknown emitter kind")
	// ErrUnavailable means the emitter's plugin is not running (failed,
	// restarting, circuit open).
	ErrUnavailable = errors.New("plugin unavailable")
)
