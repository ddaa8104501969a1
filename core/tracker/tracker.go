// Package tracker is realtimer's per-user event streams: anyone may publish
// a JSON value to a user, and every subscriber of that user sees it in
// order. Each user is one persisted stream named "track:{user}" on the hub,
// with bounded history.
package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// Prefix starts every tracker stream name.
const Prefix = "track:"

// EventType is the type of every published event.
const EventType = "track"

// Errors of the package.
var (
	// ErrInvalidUser is returned for a user name outside [a-zA-Z0-9_.-]{1,64}.
	ErrInvalidUser = errors.New("invalid user name: must match [a-zA-Z0-9_.-]{1,64}")
	// ErrInvalidData is returned for data that is not one JSON value.
	ErrInvalidData = errors.New("data must be a JSON value")
)

// Options bound each user's history.
type Options struct {
	// MaxEvents kept per user (default 10000).
	MaxEvents int
	// MaxAge of kept events (default 24h).
	MaxAge time.Duration
	// RingSize is the in-memory ring per user (default 256: users are
	// many and mostly quiet, the history serves older resumes).
	RingSize int
}

// Tracker publishes to and opens user streams.
type Tracker struct {
	hub *stream.Hub
	cfg stream.Config
}

// New returns a tracker over hub.
func New(hub *stream.Hub, o Options) *Tracker {
	if o.MaxEvents <= 0 {
		o.MaxEvents = 10000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.RingSize <= 0 {
		o.RingSize = 256
	}
	return &Tracker{hub: hub, cfg: stream.Config{
		Persist: true, RingSize: o.RingSize, MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, Kind: "tracker",
	}}
}

// ValidUser reports whether user is an acceptable user name.
func ValidUser(user string) bool {
	if len(user) == 0 || len(user) > 64 {
		return false
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// StreamName returns the stream of user.
func StreamName(user string) string { return Prefix + user }

// Stream opens (or returns) the stream of user.
func (t *Tracker) Stream(ctx context.Context, user string) (*stream.Stream, error) {
	if !ValidUser(user) {
		return nil, fmt.Errorf("tracker %q: %w", user, ErrInvalidUser)
	}
	s, err := t.hub.Open(ctx, StreamName(user), t.cfg)
	if err != nil {
		return nil, fmt.Errorf("tracker %s: %w", user, err)
	}
	return s, nil
}

// Publish appends data to user's stream and returns its seq once durable.
func (t *Tracker) Publish(ctx context.Context, user string, data json.RawMessage) (uint64, error) {
	// Compact: one SSE data line per event, and no client whitespace kept.
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil || len(data) == 0 {
		return 0, fmt.Errorf("tracker %s: %w", user, ErrInvalidData)
	}
	s, err := t.Stream(ctx, user)
	if err != nil {
		return 0, err
	}
	seq, err := s.Publish(ctx, []event.Draft{{Type: EventType, Data: buf.Bytes()}}, nil)
	if err != nil {
		return 0, fmt.Errorf("tracker %s: publish: %w", user, err)
	}
	return seq, nil
}
