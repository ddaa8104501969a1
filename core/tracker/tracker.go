// Package tracker is realtimer's per-user event streams: anyone may publish
// a JSON value to a user, and every subscriber of that user sees it in
// order. Each user is one persisted stream named "track:{user}", with
// bounded history.
//
// The tracker keeps the domain (user names, JSON compaction, naming,
// bounds); a Backend keeps the streams: the hub on a single node
// (HubBackend: the stream assigns seqs and commits to the hub's store), or
// JetStream in a cluster (core/natsbus), where any node publishes and one
// seq per user holds for the whole cluster.
package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// Target is one user's stream as a Backend sees it.
type Target struct {
	User string // a valid user name
	Name string // the stream's name, StreamName(User)
	// Config is how the stream keeps its events (Persist, bounds, ring).
	Config stream.Config
}

// Backend keeps the user streams.
type Backend interface {
	// Open returns the stream of t, opening it if needed.
	Open(ctx context.Context, t Target) (*stream.Stream, error)
	// Append publishes d to the stream of t and returns its seq once
	// durable.
	Append(ctx context.Context, t Target, d event.Draft) (uint64, error)
}

// Tracker publishes to and opens user streams.
type Tracker struct {
	b   Backend
	cfg stream.Config
}

// New returns a tracker whose streams live on hub (a single node).
func New(hub *stream.Hub, o Options) *Tracker { return NewWith(HubBackend{Hub: hub}, o) }

// NewWith returns a tracker over backend b.
func NewWith(b Backend, o Options) *Tracker {
	if o.MaxEvents <= 0 {
		o.MaxEvents = 10000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.RingSize <= 0 {
		o.RingSize = 256
	}
	return &Tracker{b: b, cfg: stream.Config{
		Persist: true, RingSize: o.RingSize, MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, Kind: "tracker",
	}}
}

// ValidUser reports whether user is an acceptable user name: a name, or
// a tenant's name (see Qualify).
func ValidUser(user string) bool {
	if tenant, name, ok := strings.Cut(user, "/"); ok {
		return validName(tenant) && validName(name)
	}
	return validName(user)
}

// Qualify returns the user name of user within tenant: each tenant has
// its own users ("tenant/user"), so one tenant never reads or writes
// another's streams; an empty tenant (auth off) is the one shared
// namespace. A user already holding a '/' is refused by the callers'
// validation, so a client cannot name another tenant's user.
func Qualify(tenant, user string) string {
	if tenant == "" {
		return user
	}
	return tenant + "/" + user
}

// ValidName reports whether name is a user name as clients send it.
func ValidName(name string) bool { return validName(name) }

func validName(user string) bool {
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

func (t *Tracker) target(user string) Target {
	return Target{User: user, Name: StreamName(user), Config: t.cfg}
}

// StreamName returns the stream of user.
func StreamName(user string) string { return Prefix + user }

// Stream opens (or returns) the stream of user.
func (t *Tracker) Stream(ctx context.Context, user string) (*stream.Stream, error) {
	if !ValidUser(user) {
		return nil, fmt.Errorf("tracker %q: %w", user, ErrInvalidUser)
	}
	s, err := t.b.Open(ctx, t.target(user))
	if err != nil {
		return nil, fmt.Errorf("tracker %s: %w", user, err)
	}
	return s, nil
}

// Publish appends data to user's stream and returns its seq once durable.
func (t *Tracker) Publish(ctx context.Context, user string, data json.RawMessage) (uint64, error) {
	// Compact: one SSE data line per event, and no client whitespace kept.
	buf := bytes.NewBuffer(make([]byte, 0, len(data)))
	if err := json.Compact(buf, data); err != nil || len(data) == 0 {
		return 0, fmt.Errorf("tracker %s: %w", user, ErrInvalidData)
	}
	return t.publish(ctx, user, buf.Bytes())
}

// PublishString appends s, as a JSON string, to user's stream and
// returns its seq once durable: what a ?data= query publishes. The
// encoding is compact by construction, so unlike Publish it needs no
// second pass over the value.
func (t *Tracker) PublishString(ctx context.Context, user, s string) (uint64, error) {
	return t.publish(ctx, user, appendJSONString(make([]byte, 0, len(s)+2), s))
}

func (t *Tracker) publish(ctx context.Context, user string, data []byte) (uint64, error) {
	if !ValidUser(user) {
		return 0, fmt.Errorf("tracker %q: %w", user, ErrInvalidUser)
	}
	seq, err := t.b.Append(ctx, t.target(user), event.Draft{Type: EventType, Data: data})
	if err != nil {
		return 0, fmt.Errorf("tracker %s: publish: %w", user, err)
	}
	return seq, nil
}

// appendJSONString appends s as encoding/json writes it. Printable ASCII
// with nothing to escape (encoding/json also escapes <, > and &) is
// copied as is; anything else goes through encoding/json, so a value
// reads the same whichever path it took.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// HubBackend keeps user streams on one node's hub: the stream assigns
// seqs and commits them to the hub's store.
type HubBackend struct{ Hub *stream.Hub }

// Open opens (or returns) the hub's stream of t.
func (b HubBackend) Open(ctx context.Context, t Target) (*stream.Stream, error) {
	return b.Hub.Open(ctx, t.Name, t.Config)
}

// Append publishes d on the hub's stream of t.
func (b HubBackend) Append(ctx context.Context, t Target, d event.Draft) (uint64, error) {
	s, err := b.Open(ctx, t)
	if err != nil {
		return 0, err
	}
	return s.Publish(ctx, []event.Draft{d}, nil)
}
