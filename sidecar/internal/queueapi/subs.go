package queueapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

// subscription pushes a queue's messages to one connection as they
// arrive: it claims them (claim_ttl, grace) and sends each claim as
// "message_delivery" frames of at most limit messages. The consumer deletes each message with its
// claim_id; one whose claim expires undeleted is delivered again, to this
// or another consumer (at-least-once). At most window messages are
// pushed and not yet deleted at a time.
type subscription struct {
	id       string
	key      queue.Key
	clientID string
	opts     subOptions
	// claimSize is the messages one claim asks for: up to a claimers'
	// share of the window, so a backlog moves in few claims (each one is
	// a durable commit, a log entry in a cluster) however small limit is.
	claimSize int
	expires   time.Time // zero: while the connection lives
	cancel    context.CancelFunc
	// done closes once the subscription's claimers returned: no delivery
	// of it is sent after that.
	done chan struct{}

	mu       sync.Mutex
	inflight inflight // message id → claim expiry
	reserved int      // window taken by claims in progress
	// soonest is the earliest claim expiry in inflight (zero when none is
	// known): scanning the window for expired claims on every claim cost
	// more than the claim itself, so reserve scans only once one is due.
	soonest time.Time
	kick    chan struct{}
}

type subOptions struct {
	ClaimTTL *int64 `json:"claim_ttl"`
	Grace    *int64 `json:"grace"`
	Limit    int    `json:"limit"`
	Window   int    `json:"window"`
}

type subParams struct {
	QueueName      string     `json:"queue_name"`
	SubscriptionID string     `json:"subscription_id"`
	TTL            *int64     `json:"ttl"`
	Options        subOptions `json:"options"`
}

const defaultWindow = 1000

func (s *session) subscribe(f frame) []byte {
	o := op{scope: ScopeWrite, client: true}
	w, err := s.identify(f, o)
	if err != nil {
		return errorReply(f.raw, err)
	}
	var p subParams
	if len(f.Body) > 0 && string(f.Body) != "null" {
		if err := decodeObject(f.Body, &p); err != nil {
			return errorReply(f.raw, err)
		}
	}
	sub, err := s.newSubscription(w, p)
	if err != nil {
		return errorReply(f.raw, err)
	}
	s.mu.Lock()
	if len(s.subs) >= s.api.o.MaxSubscriptions {
		s.mu.Unlock()
		return errorReply(f.raw, httperr.New(http.StatusBadRequest, "too_many_subscriptions", "at most %d subscriptions per connection", s.api.o.MaxSubscriptions))
	}
	s.subs[sub.id] = sub
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(s.ctx)
	sub.cancel = cancel
	// The reply goes out before the first delivery.
	rep := reply(f.raw, http.StatusCreated, map[string]any{"subscription_id": sub.id})
	s.send(rep)
	s.wg.Go(func() {
		defer close(sub.done)
		defer s.dropSub(sub.id)
		sub.run(ctx, s)
	})
	return nil
}

func (s *session) newSubscription(w who, p subParams) (*subscription, error) {
	l := s.api.q.Limits()
	if err := queue.CheckName(p.QueueName); err != nil {
		return nil, err
	}
	life, err := secs("ttl", p.TTL)
	if err != nil {
		return nil, err
	}
	cp := claimParams{TTL: p.Options.ClaimTTL, Grace: p.Options.Grace}
	ttl, grace, err := cp.durations()
	if err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = l.DefaultClaimTTL
	}
	if ttl < l.MinClaimTTL || ttl > l.MaxClaimTTL {
		return nil, queue.Invalid("options.claim_ttl", "must be between %d and %d seconds", int64(l.MinClaimTTL/time.Second), int64(l.MaxClaimTTL/time.Second))
	}
	if p.Options.Limit == 0 {
		p.Options.Limit = min(10, l.MaxMessagesPerClaim)
	}
	if p.Options.Limit < 1 || p.Options.Limit > l.MaxMessagesPerClaim {
		return nil, queue.Invalid("options.limit", "must be between 1 and %d", l.MaxMessagesPerClaim)
	}
	if p.Options.Window == 0 {
		p.Options.Window = defaultWindow
	}
	if p.Options.Window < p.Options.Limit || p.Options.Window > 100*l.MaxMessagesPerClaim {
		return nil, queue.Invalid("options.window", "must be between limit and %d", 100*l.MaxMessagesPerClaim)
	}
	sub := &subscription{
		id: uuid.NewString(), key: w.key(p.QueueName), clientID: w.clientID,
		kick: make(chan struct{}, claimers), done: make(chan struct{}),
	}
	sub.opts = p.Options
	sub.claimSize = min(max(p.Options.Window/claimers, p.Options.Limit), l.MaxMessagesPerClaim)
	ttlS, graceS := int64(ttl/time.Second), int64(grace/time.Second)
	sub.opts.ClaimTTL, sub.opts.Grace = &ttlS, &graceS
	if grace == time.Nanosecond {
		zero := int64(0)
		sub.opts.Grace = &zero
	}
	if life > 0 {
		sub.expires = s.api.q.Now().Add(life)
	}
	return sub, nil
}

func (s *session) dropSub(id string) {
	s.mu.Lock()
	delete(s.subs, id)
	s.mu.Unlock()
}

func (s *session) unsubscribe(f frame) []byte {
	var p subParams
	if len(f.Body) > 0 {
		if err := decodeObject(f.Body, &p); err != nil {
			return errorReply(f.raw, err)
		}
	}
	s.mu.Lock()
	sub, ok := s.subs[p.SubscriptionID]
	delete(s.subs, p.SubscriptionID)
	s.mu.Unlock()
	if ok {
		// The reply waits for the claimers, so it follows the last
		// delivery on the wire: a consumer that unsubscribes knows every
		// claim it was sent (to delete or release) once it has the reply.
		sub.cancel()
		select {
		case <-sub.done:
		case <-s.ctx.Done():
		}
	}
	return reply(f.raw, http.StatusNoContent, nil)
}

func (s *session) listSubscriptions(f frame) []byte {
	s.mu.Lock()
	out := make([]map[string]any, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, map[string]any{"subscription_id": sub.id, "queue_name": sub.key.Queue, "options": sub.opts})
	}
	s.mu.Unlock()
	return reply(f.raw, http.StatusOK, map[string]any{"subscriptions": out})
}

// acked frees window room of the subscriptions on a queue after this
// connection deleted messages.
func (s *session) acked(key queue.Key, p *idsParams) {
	ids := p.MessageIDs
	if p.MessageID != "" {
		ids = append(ids, p.MessageID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.key != key {
			continue
		}
		sub.mu.Lock()
		for _, id := range ids {
			sub.inflight.delete(id)
		}
		sub.mu.Unlock()
		for range claimers {
			select {
			case sub.kick <- struct{}{}:
			default:
			}
		}
	}
}

// reserve forgets deliveries whose claim expired and takes up to n of
// the free window for one claim; release gives back what it did not use.
func (sub *subscription) reserve(now time.Time, n int) int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.inflight.len() > sub.opts.Window/2 && !sub.soonest.IsZero() && !sub.soonest.After(now) {
		sub.soonest = time.Time{}
		if soonest := sub.inflight.expire(now.UnixNano()); soonest != 0 {
			sub.soonest = time.Unix(0, soonest)
		}
	}
	n = max(min(n, sub.opts.Window-sub.inflight.len()-sub.reserved), 0)
	sub.reserved += n
	return n
}

func (sub *subscription) release(n int) {
	sub.mu.Lock()
	sub.reserved -= n
	sub.mu.Unlock()
}

// claimers is how many claims one subscription keeps in progress: each
// waits for a durable commit, so several overlap to fill the window.
const claimers = 4

func (sub *subscription) run(ctx context.Context, s *session) {
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() { sub.claimLoop(ctx, s) })
	}
	wg.Wait()
}

func (sub *subscription) claimLoop(ctx context.Context, s *session) {
	api := s.api
	poll := time.NewTimer(api.o.PollInterval)
	defer poll.Stop()
	grace := time.Duration(*sub.opts.Grace) * time.Second
	if grace == 0 {
		grace = time.Nanosecond // the service reads 0 as "default"
	}
	co := queue.ClaimOptions{TTL: time.Duration(*sub.opts.ClaimTTL) * time.Second, Grace: grace}
	for ctx.Err() == nil {
		now := api.q.Now()
		if !sub.expires.IsZero() && !now.Before(sub.expires) {
			return
		}
		var wake <-chan struct{}
		if n := sub.reserve(now, sub.claimSize); n > 0 {
			// Watch before claiming: a post between the claim and the wait
			// still wakes us.
			wake = api.q.Watch(sub.key)
			co.Limit = n
			c, err := api.q.Claim(ctx, sub.key, sub.clientID, co)
			if err == nil && c.ID != "" {
				sub.deliver(s, c, n)
				continue
			}
			sub.release(n)
			if errors.Is(err, queue.ErrClosed) || ctx.Err() != nil {
				return
			}
			if err != nil {
				api.log.Warn("subscription claim failed", "queue", sub.key.String(), "err", err)
			}
		}
		poll.Reset(api.o.PollInterval)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-sub.kick:
		case <-poll.C:
		}
	}
}

func (sub *subscription) deliver(s *session, c queue.Claim, reserved int) {
	sub.mu.Lock()
	exp := c.Expires.UnixNano()
	for _, m := range c.Messages {
		sub.inflight.set(m.ID, exp)
	}
	if len(c.Messages) > 0 && (sub.soonest.IsZero() || c.Expires.Before(sub.soonest)) {
		sub.soonest = c.Expires
	}
	sub.reserved -= reserved
	sub.mu.Unlock()
	now := s.api.q.Now()
	for ms := c.Messages; len(ms) > 0; {
		n := min(len(ms), sub.opts.Limit)
		s.send(sub.deliveryFrame(c.ID, ms[:n], now))
		ms = ms[n:]
	}
}

// deliveryFrame is one "message_delivery" frame of messages of claim id.
func (sub *subscription) deliveryFrame(claimID string, ms []queue.Message, now time.Time) []byte {
	q := sub.key.Queue // a checked name: nothing to escape, nor in the ids
	size := 512 + len(ms)*(160+2*len(q)+2*len(claimID))
	for _, m := range ms {
		size += len(m.ID) + len(m.Body)
	}
	b := outBuf(size)
	b = append(b, `{"action":"message_delivery","headers":{"status":200,"subscription_id":"`...)
	b = append(append(append(append(b, sub.id...), `","queue_name":"`...), q...), `"},"body":`...)
	b = claimBody(b, q, claimID, sub.id, ms, now)
	return append(b, '}')
}
