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
	qn, err := json.Marshal(o.Queue)
	if err != nil {
		return err
	}
	// Built by hand: the generator shares the machine with the server.
	b := make(encoded, 0, 64+o.Batch*(32+len(o.Body)))
	b = append(append(append(b, `{"queue_name":`...), qn...), `,"messages":[`...)
	for i := range o.Batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if o.TTL > 0 {
			b = strconv.AppendInt(append(b, `"ttl":`...), int64(o.TTL/time.Second), 10)
			b = append(b, ',')
		}
		b = append(b, `"body":`...)
		if o.Body != nil {
			b = append(b, o.Body...)
		} else {
			b = strconv.AppendInt(append(b, `{"seq":`...), first+int64(i), 10)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	r, err := c.Do(ctx, "message_post", nil, b)
	if err != nil {
		return err
	}
	return r.Err()
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
	// OnMessage, if set, sees every delivered message id.
	OnMessage func(id string)
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
	delivered := 0
loop:
	for o.Count == 0 || delivered < o.Count {
		var d Delivery
		var ok bool
		select {
		case <-ctx.Done():
			break loop
		case d, ok = <-c.Deliveries():
			if !ok {
				fail(ErrClientClosed)
				break loop
			}
		}
		delivered += len(d.Messages)
		ids := make([]string, len(d.Messages))
		for i, m := range d.Messages {
			ids[i] = m.ID
			if o.OnMessage != nil {
				o.OnMessage(m.ID)
			}
		}
		if !o.Ack {
			count.Add(int64(len(ids)))
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := c.Do(ctx, "message_delete_many", nil, deleteBody(d.QueueName, ids, d.ClaimID))
			if err == nil {
				err = r.Err()
			}
			if err != nil {
				fail(fmt.Errorf("ack: %w", err))
				return
			}
			count.Add(int64(len(ids)))
		})
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

// deleteBody is {"queue_name","message_ids","claim_ids"}, built by hand.
func deleteBody(q string, ids []string, claim string) encoded {
	b := make(encoded, 0, 64+len(q)+20*len(ids)+len(claim))
	qn, _ := json.Marshal(q) // a string always marshals
	b = append(append(b, `{"queue_name":`...), qn...)
	b = append(b, `,"message_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, id)
	}
	b = strconv.AppendQuote(append(b, `],"claim_ids":[`...), claim)
	return append(b, "]}"...)
}
