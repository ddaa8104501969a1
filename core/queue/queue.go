// Package queue is sidestream's multi-tenant message queues with OpenStack
// Zaqar v2 semantics: lazily created queues per tenant, messages posted in
// batches with a ttl, listed by marker, claimed by competing consumers for
// a while (ttl + grace) and deleted only by the holder of their claim.
//
// Storage sits behind Driver, declared here by its consumer (Service) and
// proven by the contract suite in queuetest. Time is passed into every
// driver call, so expiry is exact and testable with a fake clock.
package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors of the package; drivers wrap them with %w.
var (
	// ErrInvalid is wrapped by every *ValidationError.
	ErrInvalid = errors.New("invalid argument")
	// ErrTooLarge reports a message or batch beyond its size limit.
	ErrTooLarge = errors.New("too large")
	// ErrQueueNotFound reports a queue that does not exist.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrMessageNotFound reports a message id that does not exist (or expired).
	ErrMessageNotFound = errors.New("message not found")
	// ErrClaimNotFound reports a claim that does not exist or expired.
	ErrClaimNotFound = errors.New("claim not found")
	// ErrClaimed reports a delete without the claim id of a claimed message.
	ErrClaimed = errors.New("message is claimed: deleting it needs its claim_id")
	// ErrNotClaimedBy reports a delete with a claim id that does not hold
	// the message (it was never claimed by it, or the claim expired).
	ErrNotClaimedBy = errors.New("message is not claimed by the given claim")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("queue service closed")
	// ErrUnavailable is wrapped by a driver that cannot serve for a while
	// (e.g. its disk is full) but may recover: retry later.
	ErrUnavailable = errors.New("queue storage temporarily unavailable")
)

// ValidationError names the field a request got wrong.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Key names one queue of one tenant. Tenants never see each other's keys.
type Key struct {
	Tenant string
	Queue  string
}

func (k Key) String() string { return k.Tenant + "/" + k.Queue }

// QueueInfo is one queue as listed.
type QueueInfo struct {
	Name string
	// Metadata is the queue's JSON object ("{}" when none was set).
	Metadata json.RawMessage
}

// NewMessage is one message of a post.
type NewMessage struct {
	Body json.RawMessage
	TTL  time.Duration
}

// Message is a stored message as seen at some instant.
type Message struct {
	ID       string
	Body     json.RawMessage
	TTL      time.Duration
	Created  time.Time
	Expires  time.Time
	ClientID string
	// ClaimID is the active claim holding the message ("" when free).
	ClaimID      string
	ClaimExpires time.Time
}

// Claimed reports whether an active claim holds m.
func (m *Message) Claimed() bool { return m.ClaimID != "" }

// ListOptions select a page of messages.
type ListOptions struct {
	// Marker is the id of the last message of the previous page ("" from
	// the start).
	Marker string
	Limit  int
	// Echo includes messages posted by ClientID itself.
	Echo           bool
	IncludeClaimed bool
	ClientID       string
}

// Page is one page of messages.
type Page struct {
	Messages []Message
	// Marker continues the listing after this page (it may be set when
	// Messages is short: the driver stopped after scanning a bounded run of
	// claimed or echoed messages).
	Marker string
}

// ClaimOptions shape a new claim.
type ClaimOptions struct {
	TTL   time.Duration
	Grace time.Duration
	Limit int
}

// Claim is a claim and the messages it still holds.
type Claim struct {
	ID       string
	TTL      time.Duration
	Grace    time.Duration
	Created  time.Time
	Expires  time.Time
	Messages []Message
}

// MessageStat is the oldest or newest message of a queue.
type MessageStat struct {
	ID      string
	Created time.Time
}

// Stats counts the live messages of a queue.
type Stats struct {
	Free    int
	Claimed int
	Total   int
	Oldest  *MessageStat
	Newest  *MessageStat
}
