package queueapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target says where the producer and consumer clients connect.
type Target struct {
	// URL is the server ("http://127.0.0.1:9000"); /v2/ws is appended.
	URL      string
	Queue    string
	Project  string
	Token    string
	ClientID string
}

func (t Target) dial(ctx context.Context) (*Client, error) {
	hdr := http.Header{}
	if t.Token != "" {
		hdr.Set("Authorization", "Bearer "+t.Token)
	}
	if t.Project != "" {
		hdr.Set("X-Project-Id", t.Project)
	}
	hdr.Set("Client-ID", t.ClientID)
	return Dial(ctx, strings.TrimSuffix(t.URL, "/")+"/v2/ws", hdr)
}

// ProduceOptions shape a producer run.
type ProduceOptions struct {
	Target
	// Count is the number of messages to post (rounded up to batches).
	Count int
	Batch int
	// Rate limits messages per second (0: as fast as acknowledged).
	Rate float64
	// InFlight is the number of batches awaiting acknowledgement.
	InFlight int
	TTL      time.Duration
	// Body is each message's JSON body (default a small object with a
	// sequence number).
	Body json.RawMessage
}

// LoadResult summarizes a run.
type LoadResult struct {
	Messages int64
	Elapsed  time.Duration
}

// PerSecond is the achieved message rate.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Elapsed.Seconds()
}

// Produce posts o.Count messages over one WebSocket, o.InFlight batches
// at a time; each counts once the server acknowledged it (durable).
func Produce(ctx context.Context, o ProduceOptions) (LoadResult, error) {
	o.Batch, o.InFlight = max(o.Batch, 1), max(o.InFlight, 1)
	c, err := o.dial(ctx)
	if err != nil {
		return LoadResult{}, err
	}
	defer c.Close()
	start := time.Now()
	var (
		reserved, done atomic.Int64
		wg             sync.WaitGroup
		firstErr       error
		errOnce        sync.Once
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	for range o.InFlight {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := reserved.Add(int64(o.Batch)) - int64(o.Batch)
				if n >= int64(o.Count) {
					return
				}
				if o.Rate > 0 {
					due := start.Add(time.Duration(float64(n) / o.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				if err := postBatch(ctx, c, o, n); err != nil {
					fail(err)
					return
				}
				done.Add(int64(o.Batch))
			}
		})
	}
	wg.Wait()
	res := LoadResult{Messages: done.Load(), Elapsed: time.Since(start)}
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return res, firstErr
	}
	return res, ctx.Err()
}

func postBatch(ctx context.Context, c *Client, o ProduceOptions, first int64) error {
	b := make([]byte, 0, 64+len(o.Queue)+o.Batch*(32+len(o.Body)))
	body := AppendPost(b, o.Queue, o.Batch, o.TTL, func(b []byte, i int) []byte {
		if o.Body != nil {
			return append(b, o.Body...)
		}
		return append(strconv.AppendInt(append(b, `{"seq":`...), first+int64(i), 10), '}')
	})
	r, err := c.Do(ctx, "message_post", nil, body)
	if err != nil {
		return err
	}
	return r.Err()
}

// AppendPost appends a message_post body of n messages to b, built by
// hand (a load generator shares the machine with the server): ttl when
// positive, and message i's body from appendBody, which must append
// valid JSON. queue is escaped, so a bad name gets the server's answer
// about names, not about a malformed frame.
func AppendPost(b []byte, queue string, n int, ttl time.Duration, appendBody func(b []byte, i int) []byte) Encoded {
	qn, _ := json.Marshal(queue) // a string always marshals
	b = append(append(append(b, `{"queue_name":`...), qn...), `,"messages":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if ttl > 0 {
			b = append(strconv.AppendInt(append(b, `"ttl":`...), int64(ttl/time.Second), 10), ',')
		}
		b = append(appendBody(append(b, `"body":`...), i), '}')
	}
	return append(b, "]}"...)
}

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
	// OnMessage, if set, sees every delivered message id.
	OnMessage func(id string)
	// OnSubscribed, if set, runs once the subscription exists.
	OnSubscribed func()
	// OnDelivery, if set, sees each delivery as it arrives (before its
	// ack); OnAck sees the size of each acknowledged delete.
	OnDelivery func(Delivery)
	OnAck      func(n int)
}

// Consume subscribes to the queue and, with Ack, deletes what it gets.
// The count is of messages delivered (and acknowledged when Ack).
func Consume(ctx context.Context, o ConsumeOptions) (LoadResult, error) {
	c, err := o.dial(ctx)
	if err != nil {
		return LoadResult{}, err
	}
	defer c.Close()
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
	if err != nil {
		return LoadResult{}, err
	}
	if err := r.Err(); err != nil {
		return LoadResult{}, fmt.Errorf("subscribe: %w", err)
	}
	if o.OnSubscribed != nil {
		o.OnSubscribed()
	}
	return consumeLoop(ctx, c, o)
}

func consumeLoop(ctx context.Context, c *Client, o ConsumeOptions) (LoadResult, error) {
	start := time.Now()
	var (
		count    atomic.Int64
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(o.InFlight, 1))
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	reached := func() bool { return o.Count > 0 && count.Load() >= int64(o.Count) }
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
			count.Add(int64(len(a.ids)))
			if o.OnAck != nil {
				o.OnAck(len(a.ids))
			}
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
			if o.OnDelivery != nil {
				o.OnDelivery(d)
			}
			for _, m := range d.Messages {
				if o.OnMessage != nil {
					o.OnMessage(m.ID)
				}
			}
			if !o.Ack {
				count.Add(int64(len(d.Messages)))
				continue
			}
			pending.add(d)
		}
	}
	wg.Wait()
	res := LoadResult{Messages: count.Load(), Elapsed: time.Since(start)}
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

func (p *pendingAcks) add(d Delivery) {
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
func deleteBody(q string, ids, claims []string) Encoded {
	b := make(Encoded, 0, 64+len(q)+24*len(ids)+40*len(claims))
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
