package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/queue/memq"
)

// The queue.Driver calls: writes are ops proposed to the log, reads are
// served from the local state once it has caught up with the log.

// CreateQueue implements queue.Driver.
func (d *QueueDriver) CreateQueue(ctx context.Context, k queue.Key, meta json.RawMessage, _ time.Time) (bool, error) {
	r, err := d.propose(ctx, &op{Kind: opCreateQueue, Tenant: k.Tenant, Queue: k.Queue, Meta: meta})
	return r.created, err
}

// SetQueueMetadata implements queue.Driver.
func (d *QueueDriver) SetQueueMetadata(ctx context.Context, k queue.Key, meta json.RawMessage) error {
	_, err := d.propose(ctx, &op{Kind: opSetMeta, Tenant: k.Tenant, Queue: k.Queue, Meta: meta})
	return err
}

// DeleteQueue implements queue.Driver.
func (d *QueueDriver) DeleteQueue(ctx context.Context, k queue.Key) error {
	_, err := d.propose(ctx, &op{Kind: opDeleteQueue, Tenant: k.Tenant, Queue: k.Queue})
	return err
}

// PostMessages implements queue.Driver.
func (d *QueueDriver) PostMessages(ctx context.Context, k queue.Key, clientID string, msgs []queue.NewMessage, now time.Time) ([]string, error) {
	if _, err := uuid.Parse(clientID); err != nil {
		return nil, queue.Invalid("Client-ID", "must be a UUID: %v", err)
	}
	o := &op{Kind: opPost, Tenant: k.Tenant, Queue: k.Queue, Now: now.UnixNano(), Client: clientID,
		Msgs: make([]logMsg, len(msgs))}
	for i, m := range msgs {
		o.Msgs[i] = logMsg{Body: m.Body, TTL: int64(m.TTL)}
	}
	r, err := d.propose(ctx, o)
	return r.ids, err
}

// DeleteMessages implements queue.Driver.
func (d *QueueDriver) DeleteMessages(ctx context.Context, k queue.Key, ids, claimIDs []string, now time.Time) error {
	_, err := d.propose(ctx, &op{Kind: opDelete, Tenant: k.Tenant, Queue: k.Queue, Now: now.UnixNano(), IDs: ids, Claims: claimIDs})
	return err
}

// PopMessages implements queue.Driver.
func (d *QueueDriver) PopMessages(ctx context.Context, k queue.Key, limit int, now time.Time) ([]queue.Message, error) {
	if ok, err := d.claimable(ctx, k, now); !ok || err != nil {
		return nil, err
	}
	r, err := d.propose(ctx, &op{Kind: opPop, Tenant: k.Tenant, Queue: k.Queue, Now: now.UnixNano(), Limit: limit})
	return r.msgs, err
}

// CreateClaim implements queue.Driver. The claim id is made here, so the
// op applies alike on every node.
func (d *QueueDriver) CreateClaim(ctx context.Context, k queue.Key, o queue.ClaimOptions, now time.Time) (queue.Claim, error) {
	if ok, err := d.claimable(ctx, k, now); !ok || err != nil {
		return queue.Claim{}, err
	}
	r, err := d.propose(ctx, &op{Kind: opClaim, Tenant: k.Tenant, Queue: k.Queue, Now: now.UnixNano(),
		Claim: uuid.NewString(), TTL: int64(o.TTL), Grace: int64(o.Grace), Limit: o.Limit})
	return r.claim, err
}

// claimable reports whether a claim or pop of k at now may find a
// message. Consumers poll empty queues: answering "nothing" from the
// caught-up local state costs a share of one read barrier (polls at once
// share it) instead of a log entry each. Local state that says "maybe"
// (even if stale) sends the call through the log, which decides.
func (d *QueueDriver) claimable(ctx context.Context, k queue.Key, now time.Time) (bool, error) {
	d.smu.RLock()
	ok := d.st.Claimable(k, now)
	d.smu.RUnlock()
	if ok {
		return true, nil
	}
	err := d.read(ctx, func(s *memq.State) { ok = s.Claimable(k, now) })
	return ok, err
}

// RenewClaim implements queue.Driver.
func (d *QueueDriver) RenewClaim(ctx context.Context, k queue.Key, id string, ttl, grace time.Duration, now time.Time) error {
	if _, ok := memq.ParseClaimID(id); !ok {
		return fmt.Errorf("%w: %q", queue.ErrClaimNotFound, id)
	}
	_, err := d.propose(ctx, &op{Kind: opRenew, Tenant: k.Tenant, Queue: k.Queue, Now: now.UnixNano(),
		Claim: id, TTL: int64(ttl), Grace: int64(grace)})
	return err
}

// ReleaseClaim implements queue.Driver.
func (d *QueueDriver) ReleaseClaim(ctx context.Context, k queue.Key, id string, now time.Time) error {
	if _, ok := memq.ParseClaimID(id); !ok {
		return nil
	}
	_, err := d.propose(ctx, &op{Kind: opRelease, Tenant: k.Tenant, Queue: k.Queue, Now: now.UnixNano(), Claim: id})
	return err
}

// Expire implements queue.Driver. It proposes a sweep only when the
// caught-up state has something expired at now, so idle sweeps (every
// node runs them every second) write nothing to the log.
func (d *QueueDriver) Expire(ctx context.Context, now time.Time) (int, error) {
	var next int64
	if err := d.read(ctx, func(s *memq.State) { next = s.NextExpiry() }); err != nil {
		return 0, err
	}
	if next > now.UnixNano() {
		return 0, nil
	}
	r, err := d.propose(ctx, &op{Kind: opExpire, Now: now.UnixNano()})
	return r.n, err
}

// QueueMetadata implements queue.Driver.
func (d *QueueDriver) QueueMetadata(ctx context.Context, k queue.Key) (meta json.RawMessage, err error) {
	if rerr := d.read(ctx, func(s *memq.State) { meta, err = s.QueueMetadata(k) }); rerr != nil {
		return nil, rerr
	}
	return meta, err
}

// ListQueues implements queue.Driver.
func (d *QueueDriver) ListQueues(ctx context.Context, tenant, marker string, limit int) (out []queue.QueueInfo, err error) {
	err = d.read(ctx, func(s *memq.State) { out = s.ListQueues(tenant, marker, limit) })
	return out, err
}

// QueueStats implements queue.Driver.
func (d *QueueDriver) QueueStats(ctx context.Context, k queue.Key, now time.Time) (st queue.Stats, err error) {
	err = d.read(ctx, func(s *memq.State) { st = s.QueueStats(k, now) })
	return st, err
}

// ListMessages implements queue.Driver.
func (d *QueueDriver) ListMessages(ctx context.Context, k queue.Key, o queue.ListOptions, now time.Time) (p queue.Page, err error) {
	err = d.read(ctx, func(s *memq.State) { p = s.ListMessages(k, o, now) })
	return p, err
}

// GetMessages implements queue.Driver.
func (d *QueueDriver) GetMessages(ctx context.Context, k queue.Key, ids []string, now time.Time) (ms []queue.Message, err error) {
	err = d.read(ctx, func(s *memq.State) { ms = s.GetMessages(k, ids, now) })
	return ms, err
}

// GetClaim implements queue.Driver.
func (d *QueueDriver) GetClaim(ctx context.Context, k queue.Key, id string, now time.Time) (c queue.Claim, err error) {
	if rerr := d.read(ctx, func(s *memq.State) { c, err = s.GetClaim(k, id, now) }); rerr != nil {
		return queue.Claim{}, rerr
	}
	return c, err
}
