package stream

import (
	"context"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// Checkpoint is an emitter's durable position, stored in the same
// transaction as the events it covers.
type Checkpoint struct {
	Emitter string
	Value   []byte
}

// Append is one atomic write of a stream.
type Append struct {
	Stream string
	// Events are added to the stream's history (keyed by seq). Empty for
	// streams that keep no history.
	Events []*event.Event
	// Head is the highest seq the stream may have handed out after this
	// append; it is stored so seqs are never reused after a restart, even
	// when no history is kept. Zero leaves it unchanged.
	Head uint64
	// Checkpoint, when set, is stored in the same transaction.
	Checkpoint *Checkpoint
}

// Committer stores appends durably. Concurrent commits share one
// transaction and one fsync (group commit); Commit returns only once its
// append is durable, and appends of one stream commit in call order.
type Committer interface {
	Commit(ctx context.Context, a Append) error
}

// History reads what a Committer stored.
type History interface {
	// ReadAfter returns up to limit events with seq > after, ascending.
	ReadAfter(ctx context.Context, stream string, after uint64, limit int) ([]*event.Event, error)
	// ReadBefore returns the newest up to limit events with seq < before,
	// ascending (before == 0 means from the newest).
	ReadBefore(ctx context.Context, stream string, before uint64, limit int) ([]*event.Event, error)
	// Head returns the highest stored Head or event seq of the stream (0
	// for a stream never written).
	Head(ctx context.Context, stream string) (uint64, error)
}

// Pruner bounds a stream's history.
type Pruner interface {
	// Prune deletes all but the newest keep events and every event older
	// than olderThan (zero time: no age bound; keep <= 0: no count bound).
	Prune(ctx context.Context, stream string, keep int, olderThan time.Time) (deleted int, err error)
}

// Store is everything a Hub needs from persistence.
type Store interface {
	Committer
	History
	Pruner
	// DeleteStream removes a stream's history and head.
	DeleteStream(ctx context.Context, stream string) error
}
