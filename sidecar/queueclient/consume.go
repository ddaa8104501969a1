package queueclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/apiclient"
)

// ConsumeOptions shape a consumer run.
type ConsumeOptions struct {
	Target
	// Count stops after this many messages (0: until ctx ends).
	Count    int
	Batch    int
	ClaimTTL time.Duration
	Grace    time.Duration
	Window   int
	// Ack deletes each delivered message with its claim.
	Ack bool
	// InFlight bounds the deletes awaiting acknowledgement.
	InFlight int
	// AckMax caps the message ids of one delete (0: DefaultAckMax); it
	// must not exceed the server's max_messages_per_page.
	AckMax int
}

// Consumer is one subscription of one connection.
type Consumer struct {
	c     *Client
	o     ConsumeOptions
	subID string
	acked atomic.Int64
}

// Subscribe connects to o.Target and subscribes to its queue; it returns
// once the server confirmed the subscription, so that messages posted
// from then on reach this consumer. Close ends it.
func Subscribe(ctx context.Context, o ConsumeOptions) (*Consumer, error) {
	c, err := o.Dial(ctx)
	if err != nil {
		return nil, err
	}
	limit := max(o.Batch, 1)
	if o.Count > 0 {
		limit = min(limit, o.Count) // no claim larger than the whole run
	}
	opts := map[string]any{"limit": limit}
	if o.ClaimTTL > 0 {
		opts["claim_ttl"] = int64(o.ClaimTTL / time.Second)
	}
	if o.Grace > 0 {
		opts["grace"] = int64(o.Grace / time.Second)
	}
	if o.Window > 0 {
		opts["window"] = o.Window
	}
	r, err := c.Do(ctx, "subscription_create", nil, map[string]any{"queue_name": o.Queue, "options": opts})
	if err == nil {
		err = r.Err()
	}
	var created struct {
		SubscriptionID string `json:"subscription_id"`
	}
	if err == nil {
		err = json.Unmarshal(r.Body, &created)
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return &Consumer{c: c, o: o, subID: created.SubscriptionID}, nil
}

// Close ends the connection (and with it the subscription).
func (k *Consumer) Close() error { return k.c.Close() }

// Acked is the number of messages done so far: acknowledged (deleted)
// with Ack, delivered without. It is the live count Run's Result ends
// with, for progress while Run runs.
func (k *Consumer) Acked() int64 { return k.acked.Load() }

// Consume is Subscribe, Run and Close: it receives o.Count messages (or
// until ctx ends) and, with Ack, deletes them. handle, if not nil, sees
// each delivery as it arrives.
func Consume(ctx context.Context, o ConsumeOptions, handle func(api.QueueDelivery)) (Result, error) {
	k, err := Subscribe(ctx, o)
	if err != nil {
		return Result{}, err
	}
	defer k.Close()
	return k.Run(ctx, handle)
}

// run is the state of one Run.
type run struct {
	k        *Consumer
	wg       sync.WaitGroup
	sem      chan struct{}
	errOnce  sync.Once
	firstErr error
	cancel   context.CancelFunc
	// release lists the claims to give back at the end: without Ack every
	// claim, with it those holding messages beyond Count.
	release []string
}

func (r *run) fail(err error) { r.errOnce.Do(func() { r.firstErr = err; r.cancel() }) }

// ack deletes a's messages with their claims; it holds a slot of sem.
// It runs on actx, which outlives Run's ctx by finishTimeout: a message
// handed to the caller is deleted, not left claimed, and a server that
// stopped answering still cannot hold Ctrl-C up for long.
func (r *run) ack(actx context.Context, a pendingAcks) {
	r.wg.Go(func() {
		defer func() { <-r.sem }()
		rep, err := r.k.c.Do(actx, "message_delete_many", nil, deleteBody(a.queue, a.ids, a.claims))
		if err == nil {
			err = rep.Err()
		}
		if err != nil {
			r.fail(fmt.Errorf("ack: %w", err))
			return
		}
		r.k.acked.Add(int64(len(a.ids)))
	})
}

// Run hands each delivery to handle (if not nil) as it arrives, before
// its ack, and with Ack deletes its messages with their claims; the
// deliveries that arrive while every ack slot is taken are deleted
// together (at most AckMax ids). It returns once Count messages are
// done (see Acked), or when ctx ends or the connection fails. handle
// never sees more than Count messages. Before it returns, Run ends the
// subscription and gives back every claim it still holds (the messages
// beyond Count, every claim without Ack), so the next consumer gets them
// at once instead of after the claim ttl; Run ends the subscription even
// when it returns, so a Consumer runs once.
func (k *Consumer) Run(ctx context.Context, handle func(api.QueueDelivery)) (Result, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{k: k, sem: make(chan struct{}, max(k.o.InFlight, 1)), cancel: cancel}
	actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
	defer acancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(finishTimeout, acancel) })
	defer stop()
	pending := r.receive(ctx, actx, handle)
	r.wg.Wait()
	r.finish(ctx, pending)
	res := Result{Messages: k.acked.Load(), Elapsed: time.Since(start)}
	switch {
	case r.firstErr != nil:
		return res, r.firstErr
	case k.o.Count > 0 && res.Messages >= int64(k.o.Count):
		return res, nil
	}
	return res, ctx.Err()
}

// receive takes deliveries until Count messages were delivered, ctx ends
// or the connection fails, and returns the acks not sent yet.
func (r *run) receive(ctx, actx context.Context, handle func(api.QueueDelivery)) *pendingAcks {
	k, o := r.k, r.k.o
	maxAck := o.AckMax
	if maxAck <= 0 {
		maxAck = DefaultAckMax
	}
	var pending pendingAcks
	delivered := 0
	for ctx.Err() == nil {
		in := k.c.Deliveries()
		if (o.Count > 0 && delivered >= o.Count) || len(pending.ids) >= maxAck {
			in = nil // nothing more to take before the pending acks leave
		}
		var slot chan struct{}
		if len(pending.ids) > 0 {
			slot = r.sem
		} else if in == nil {
			break
		}
		select {
		case <-ctx.Done():
		case slot <- struct{}{}:
			r.ack(actx, pending.take(maxAck))
		case d, ok := <-in:
			if !ok {
				r.fail(ErrClientClosed)
				break
			}
			// Messages beyond Count go back with their claim, after the
			// first ones are deleted; without Ack every claim goes back.
			trimmed := o.Count > 0 && len(d.Messages) > o.Count-delivered
			if trimmed {
				d.Messages = d.Messages[:o.Count-delivered]
			}
			if trimmed || !o.Ack {
				r.release = append(r.release, d.ClaimID)
			}
			delivered += len(d.Messages)
			if handle != nil && len(d.Messages) > 0 {
				handle(d)
			}
			if !o.Ack {
				k.acked.Add(int64(len(d.Messages)))
				continue
			}
			pending.add(d)
		}
	}
	return &pending
}

// finish ends the subscription, deletes what was handed out and not
// acknowledged yet, and releases every claim still held: those of the
// deliveries still on their way too. It needs a live connection; ctx may
// have ended (Ctrl-C), so it runs on its own bounded time.
func (r *run) finish(ctx context.Context, pending *pendingAcks) {
	c, o := r.k.c, r.k.o
	if c.Err() != nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	var errs []error
	rep, err := c.Do(cctx, "subscription_delete", nil, map[string]any{"queue_name": o.Queue, "subscription_id": r.k.subID})
	if err == nil {
		err = rep.Err()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("unsubscribe: %w", err))
	} else {
		c.EndDeliveries()
		for d := range c.Deliveries() {
			r.release = append(r.release, d.ClaimID)
		}
	}
	for len(pending.ids) > 0 && o.Ack {
		a := pending.take(DefaultAckMax)
		if err := r.do(cctx, "message_delete_many", deleteBody(a.queue, a.ids, a.claims)); err != nil {
			errs = append(errs, fmt.Errorf("ack: %w", err))
			break
		}
		r.k.acked.Add(int64(len(a.ids)))
	}
	for _, id := range r.release {
		if err := r.do(cctx, "claim_delete", map[string]any{"queue_name": o.Queue, "claim_id": id}); err != nil && !apiclient.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("release claim %s: %w", id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.fail(err)
	}
}

// finishTimeout bounds the unsubscribe, last acks and releases of a run.
const finishTimeout = 10 * time.Second

func (r *run) do(ctx context.Context, action string, body any) error {
	rep, err := r.k.c.Do(ctx, action, nil, body)
	if err == nil {
		err = rep.Err()
	}
	return err
}

// DefaultAckMax is the most message ids one ack carries: the server's
// default max_messages_per_page.
const DefaultAckMax = 100

// pendingAcks are deliveries not acknowledged yet. While every ack slot
// is taken, the deliveries that arrive meanwhile leave together in one
// message_delete_many (ids with their claim_ids), as a group commit
// does: at small claims that halves the frames and store writes per
// message, and an idle consumer still acks each delivery at once.
type pendingAcks struct {
	queue  string
	ids    []string
	claims []string
	sizes  []int // ids per delivery, so that a take never splits one
}

func (p *pendingAcks) add(d api.QueueDelivery) {
	p.queue = d.QueueName
	for _, m := range d.Messages {
		p.ids = append(p.ids, m.ID)
	}
	if len(d.Messages) > 0 {
		p.claims = append(p.claims, d.ClaimID)
		p.sizes = append(p.sizes, len(d.Messages))
	}
}

// take removes whole deliveries, at most maxIDs ids unless the first
// delivery alone has more.
func (p *pendingAcks) take(maxIDs int) pendingAcks {
	n, k := p.sizes[0], 1
	for k < len(p.sizes) && n+p.sizes[k] <= maxIDs {
		n += p.sizes[k]
		k++
	}
	out := pendingAcks{queue: p.queue, ids: p.ids[:n:n], claims: p.claims[:k:k], sizes: nil}
	p.ids, p.claims, p.sizes = p.ids[n:], p.claims[k:], p.sizes[k:]
	if len(p.ids) == 0 {
		*p = pendingAcks{queue: p.queue}
	}
	return out
}

// deleteBody is {"queue_name","message_ids","claim_ids"}, built by hand.
func deleteBody(q string, ids, claims []string) json.RawMessage {
	b := make(json.RawMessage, 0, 64+len(q)+24*len(ids)+40*len(claims))
	qn, _ := json.Marshal(q) // a string always marshals
	b = append(append(b, `{"queue_name":`...), qn...)
	b = append(b, `,"message_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, `],"claim_ids":[`...)
	for i, id := range claims {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string. Ids are printable ASCII
// and are copied between quotes (strconv.AppendQuote cost the load
// generator 3% of its CPU, and its Go escapes are not JSON); anything
// else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
