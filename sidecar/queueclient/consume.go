package queueclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
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
	opts := map[string]any{"limit": max(o.Batch, 1)}
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
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return &Consumer{c: c, o: o}, nil
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

// Run hands each delivery to handle (if not nil) as it arrives, before
// its ack, and with Ack deletes its messages with their claims; the
// deliveries that arrive while every ack slot is taken are deleted
// together (at most AckMax ids). It returns once Count messages are
// done (see Acked), or when ctx ends or the connection fails.
func (k *Consumer) Run(ctx context.Context, handle func(api.QueueDelivery)) (Result, error) {
	c, o := k.c, k.o
	start := time.Now()
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(o.InFlight, 1))
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	reached := func() bool { return o.Count > 0 && k.acked.Load() >= int64(o.Count) }
	ack := func(a pendingAcks) { // holds a slot of sem
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := c.Do(ctx, "message_delete_many", nil, deleteBody(a.queue, a.ids, a.claims))
			if err == nil {
				err = r.Err()
			}
			if err != nil {
				fail(fmt.Errorf("ack: %w", err))
				return
			}
			k.acked.Add(int64(len(a.ids)))
		})
	}
	maxAck := o.AckMax
	if maxAck <= 0 {
		maxAck = DefaultAckMax
	}
	var pending pendingAcks
	delivered := 0
	for ctx.Err() == nil {
		in := c.Deliveries()
		if (o.Count > 0 && delivered >= o.Count) || len(pending.ids) >= maxAck {
			in = nil // nothing more to take before the pending acks leave
		}
		var slot chan struct{}
		if len(pending.ids) > 0 {
			slot = sem
		} else if in == nil {
			break
		}
		select {
		case <-ctx.Done():
		case slot <- struct{}{}:
			ack(pending.take(maxAck))
		case d, ok := <-in:
			if !ok {
				fail(ErrClientClosed)
				break
			}
			delivered += len(d.Messages)
			if handle != nil {
				handle(d)
			}
			if !o.Ack {
				k.acked.Add(int64(len(d.Messages)))
				continue
			}
			pending.add(d)
		}
	}
	wg.Wait()
	res := Result{Messages: k.acked.Load(), Elapsed: time.Since(start)}
	if firstErr != nil {
		return res, firstErr
	}
	if reached() {
		return res, nil
	}
	return res, ctx.Err()
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
		b = strconv.AppendQuote(b, id)
	}
	b = append(b, `],"claim_ids":[`...)
	for i, id := range claims {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, id)
	}
	return append(b, "]}"...)
}
