package queue

import (
	"context"
	"encoding/json"
	"time"
)

// Driver stores queues. Service validates every argument before calling
// it, so a driver may trust names, sizes and limits. Every call gets the
// current time: a message or claim whose expiry is <= now no longer
// exists for that call, whether or not Expire has purged it yet.
//
// Writes are acknowledged only once durable. Calls are safe for
// concurrent use, and the claim of a message is exclusive: two claims
// never hold one message at the same instant.
type Driver interface {
	// CreateQueue creates k with meta (a JSON object); created is false
	// when k existed (its metadata is then left unchanged).
	CreateQueue(ctx context.Context, k Key, meta json.RawMessage, now time.Time) (created bool, err error)
	// QueueMetadata returns k's metadata or ErrQueueNotFound.
	QueueMetadata(ctx context.Context, k Key) (json.RawMessage, error)
	// SetQueueMetadata replaces k's metadata or returns ErrQueueNotFound.
	SetQueueMetadata(ctx context.Context, k Key, meta json.RawMessage) error
	// ListQueues returns up to limit queues of tenant named after marker,
	// in name order.
	ListQueues(ctx context.Context, tenant, marker string, limit int) ([]QueueInfo, error)
	// DeleteQueue removes k and everything in it; a missing k is no error.
	DeleteQueue(ctx context.Context, k Key) error
	// QueueStats counts k's live messages (zeros for a missing queue).
	QueueStats(ctx context.Context, k Key, now time.Time) (Stats, error)

	// PostMessages stores msgs in order (creating k if needed) and returns
	// their ids, which sort in post order as strings.
	PostMessages(ctx context.Context, k Key, clientID string, msgs []NewMessage, now time.Time) ([]string, error)
	// ListMessages returns a page of live messages in post order.
	ListMessages(ctx context.Context, k Key, o ListOptions, now time.Time) (Page, error)
	// GetMessages returns the live messages among ids, in the order of
	// ids; unknown, malformed and expired ids are left out.
	GetMessages(ctx context.Context, k Key, ids []string, now time.Time) ([]Message, error)
	// DeleteMessages deletes ids atomically: with no claimIDs, every live
	// message among them must be unclaimed (else ErrClaimed); with
	// claimIDs, each must be held by one of them (else ErrNotClaimedBy).
	// Unknown ids are ignored. Nothing is deleted when an error is returned.
	DeleteMessages(ctx context.Context, k Key, ids, claimIDs []string, now time.Time) error
	// PopMessages deletes and returns up to limit unclaimed messages,
	// oldest first.
	PopMessages(ctx context.Context, k Key, limit int, now time.Time) ([]Message, error)

	// CreateClaim claims up to o.Limit unclaimed messages, oldest first,
	// until now+o.TTL, and extends their life to at least the claim's end
	// plus o.Grace. With none available it returns a Claim with no ID and
	// no messages.
	CreateClaim(ctx context.Context, k Key, o ClaimOptions, now time.Time) (Claim, error)
	// GetClaim returns an active claim with the messages it still holds.
	GetClaim(ctx context.Context, k Key, id string, now time.Time) (Claim, error)
	// RenewClaim restarts an active claim's ttl from now with a new grace.
	RenewClaim(ctx context.Context, k Key, id string, ttl, grace time.Duration, now time.Time) error
	// ReleaseClaim frees the claim's messages; an unknown id is no error.
	ReleaseClaim(ctx context.Context, k Key, id string, now time.Time) error

	// Expire purges messages and claims that expired at or before now and
	// returns how many it removed.
	Expire(ctx context.Context, now time.Time) (int, error)
}
