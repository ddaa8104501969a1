package queueclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// Target says where the producer and consumer clients connect.
type Target struct {
	// URL is the server ("http://127.0.0.1:9000"); /v2/ws is appended.
	URL      string
	Queue    string
	Project  string
	Token    string
	ClientID string
	// TLSConfig is used for an https:// URL (nil: the system roots).
	TLSConfig *tls.Config
}

// Dial opens a connection to t's server with t's identity (token,
// project, client id).
func (t Target) Dial(ctx context.Context) (*Client, error) {
	hdr := http.Header{}
	if t.Token != "" {
		hdr.Set("Authorization", "Bearer "+t.Token)
	}
	if t.Project != "" {
		hdr.Set("X-Project-Id", t.Project)
	}
	hdr.Set("Client-ID", t.ClientID)
	return dial(ctx, strings.TrimSuffix(t.URL, "/")+"/v2/ws", wire.DialOptions{Header: hdr, TLSConfig: t.TLSConfig})
}

// ProduceOptions shape a producer run.
type ProduceOptions struct {
	Target
	// Count is the number of messages to post: batches of Batch, the
	// last one what is left.
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

// Result sums up a producer or consumer run.
type Result struct {
	Messages int64
	Elapsed  time.Duration
}

// PerSecond is the achieved message rate.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Elapsed.Seconds()
}

// Produce posts o.Count messages over one WebSocket, o.InFlight batches
// at a time; each counts once the server acknowledged it (durable).
func Produce(ctx context.Context, o ProduceOptions) (Result, error) {
	o.Batch, o.InFlight = max(o.Batch, 1), max(o.InFlight, 1)
	c, err := o.Dial(ctx)
	if err != nil {
		return Result{}, err
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
				size := int(min(int64(o.Batch), int64(o.Count)-n)) // the last batch only what is left
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
				if err := postBatch(ctx, c, o, n, size); err != nil {
					fail(err)
					return
				}
				done.Add(int64(size))
			}
		})
	}
	wg.Wait()
	res := Result{Messages: done.Load(), Elapsed: time.Since(start)}
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return res, firstErr
	}
	return res, ctx.Err()
}

func postBatch(ctx context.Context, c *Client, o ProduceOptions, first int64, n int) error {
	return c.Post(ctx, o.Queue, n, o.TTL, func(b []byte, i int) []byte {
		if o.Body != nil {
			return append(b, o.Body...)
		}
		return append(strconv.AppendInt(append(b, `{"seq":`...), first+int64(i), 10), '}')
	})
}

// Post posts n messages to queue in one message_post and returns once
// the server acknowledged them (stored durably). body appends message
// i's JSON body to b and must append valid JSON; ttl 0 keeps the queue's
// default. The frame is built by hand, in one buffer: producers share
// the machine with servers, and a post is most of what they do.
func (c *Client) Post(ctx context.Context, queue string, n int, ttl time.Duration, body func(b []byte, i int) []byte) error {
	id := strconv.FormatUint(c.next.Add(1), 10)
	b := make([]byte, 0, 96+len(queue)+n*64)
	b = append(append(append(b, `{"action":"message_post","headers":{"Request-ID":"`...), id...), `"},"body":`...)
	b = append(appendPost(b, queue, n, ttl, body), '}')
	r, err := c.roundTrip(ctx, id, b)
	if err != nil {
		return err
	}
	return r.Err()
}

// appendPost appends a message_post body of n messages to b: ttl when
// positive, and message i's body from appendBody. queue is escaped, so a
// bad name gets the server's answer about names, not about a malformed
// frame.
func appendPost(b []byte, queue string, n int, ttl time.Duration, appendBody func(b []byte, i int) []byte) []byte {
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
