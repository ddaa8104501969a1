package queueapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"
)

// Client is a WebSocket client of /v2/ws: Do sends a frame and waits for
// its reply (frames are pipelined; replies are matched by a Request-ID
// header); Deliveries yields subscription pushes.
type Client struct {
	conn       *websocket.Conn
	next       atomic.Uint64
	wmu        sync.Mutex
	mu         sync.Mutex
	pending    map[string]chan Reply
	err        error
	deliveries chan Delivery
	others     chan Reply
	done       chan struct{}
}

// Reply is the answer to one frame.
type Reply struct {
	Status int
	Body   json.RawMessage
}

// Err returns the reply's error ({"error":{code,message}}) when its
// status is not 2xx.
func (r Reply) Err() error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	var e struct {
		Error apiError `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return fmt.Errorf("status %d: %s: %s", r.Status, e.Error.Code, e.Error.Message)
}

// Delivery is one push of a subscription.
type Delivery struct {
	QueueName      string   `json:"queue_name"`
	ClaimID        string   `json:"claim_id"`
	SubscriptionID string   `json:"subscription_id"`
	Messages       []msgOut `json:"messages"`
}

// ErrClientClosed is returned once the connection ended.
var ErrClientClosed = errors.New("queue client: connection closed")

// Dial opens a WebSocket to url (ws:// or http://…/v2/ws) with hdr on
// the upgrade request (Authorization, X-Project-Id, Client-ID).
func Dial(ctx context.Context, url string, hdr http.Header) (*Client, error) {
	cli, err := client.NewClient(client.WithDialer(standard.NewDialer()), client.WithDialTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	// Not released to the pools: the upgraded connection lives on in them.
	req, resp := protocol.AcquireRequest(), protocol.AcquireResponse()
	req.SetRequestURI(url)
	req.SetMethod(http.MethodGet)
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	u := &websocket.ClientUpgrader{}
	u.PrepareRequest(req)
	if err := cli.Do(ctx, req, resp); err != nil {
		return nil, fmt.Errorf("queue client: dial %s: %w", url, err)
	}
	if resp.StatusCode() != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("queue client: dial %s: status %d: %s", url, resp.StatusCode(), resp.Body())
	}
	conn, err := u.UpgradeResponse(req, resp)
	if err != nil {
		return nil, fmt.Errorf("queue client: upgrade: %w", err)
	}
	c := &Client{conn: conn, pending: map[string]chan Reply{}, deliveries: make(chan Delivery, 64), others: make(chan Reply, 64), done: make(chan struct{})}
	go c.read()
	return c, nil
}

// deliveryPrefix starts every delivery frame the server writes.
var deliveryPrefix = []byte(`{"action":"message_delivery",`)

type wireReply struct {
	Action  string          `json:"action"`
	Request json.RawMessage `json:"request"`
	Headers struct {
		Status int `json:"status"`
	} `json:"headers"`
	Body json.RawMessage `json:"body"`
}

func (c *Client) read() {
	defer close(c.done)
	defer close(c.deliveries)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.fail(err)
			return
		}
		if bytes.HasPrefix(data, deliveryPrefix) {
			// One pass, straight into the Delivery.
			var f struct {
				Body Delivery `json:"body"`
			}
			if err := json.Unmarshal(data, &f); err != nil {
				c.fail(fmt.Errorf("queue client: bad delivery: %w", err))
				return
			}
			c.deliveries <- f.Body
			continue
		}
		var r wireReply
		if err := json.Unmarshal(data, &r); err != nil {
			c.fail(fmt.Errorf("queue client: bad frame from server: %w", err))
			return
		}
		var req struct {
			Headers struct {
				ID any `json:"Request-ID"`
			} `json:"headers"`
		}
		_ = json.Unmarshal(r.Request, &req) // the echo of a bad frame may be anything
		id, _ := req.Headers.ID.(string)
		c.mu.Lock()
		ch, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		rep := Reply{Status: r.Headers.Status, Body: r.Body}
		if ok {
			ch <- rep
			continue
		}
		select {
		case c.others <- rep:
		default: // nobody reads them: drop
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

// Do sends one frame and waits for its reply. headers may be nil.
func (c *Client) Do(ctx context.Context, action string, headers map[string]string, body any) (Reply, error) {
	id := strconv.FormatUint(c.next.Add(1), 10)
	h := make(map[string]string, len(headers)+1)
	for k, v := range headers {
		h[k] = v
	}
	h["Request-ID"] = id
	hb, err := json.Marshal(h)
	if err != nil {
		return Reply{}, err
	}
	bb, ok := body.(encoded)
	if !ok {
		if bb, err = json.Marshal(body); err != nil {
			return Reply{}, err
		}
	}
	ab, _ := json.Marshal(action)
	b := make([]byte, 0, len(ab)+len(hb)+len(bb)+32)
	b = append(append(append(b, `{"action":`...), ab...), `,"headers":`...)
	b = append(append(append(append(b, hb...), `,"body":`...), bb...), '}')
	ch := make(chan Reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return Reply{}, c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.WriteRaw(b); err != nil {
		// A frame that cannot be written leaves the connection unusable.
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return Reply{}, fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return Reply{}, c.err
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return Reply{}, ctx.Err()
	}
}

// WriteRaw sends one text frame as is (tests send malformed ones).
func (c *Client) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// Deliveries yields subscription pushes; it closes with the connection.
// A consumer that subscribes must drain it.
func (c *Client) Deliveries() <-chan Delivery { return c.deliveries }

// Others yields replies that match no Do call (answers to WriteRaw).
func (c *Client) Others() <-chan Reply { return c.others }

// Close closes the connection and waits for the reader.
func (c *Client) Close() error {
	c.wmu.Lock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	err := c.conn.Close()
	for range c.deliveries { // unblock the reader if nobody drains
	}
	<-c.done
	return err
}
