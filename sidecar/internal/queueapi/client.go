package queueapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/api"
)

// Client is a WebSocket client of /v2/ws: Do sends a frame and waits for
// its reply (frames are pipelined; replies are matched by a Request-ID
// header); Deliveries yields subscription pushes.
type Client struct {
	conn *websocket.Conn
	next atomic.Uint64
	wmu  sync.Mutex // serializes writes to the connection
	// pmu guards the frames waiting to be written (pend, already framed
	// and masked) and whether a writer is draining them.
	pmu        sync.Mutex
	pend       []byte
	spare      []byte
	writing    bool
	werr       error
	mu         sync.Mutex
	pending    map[string]chan Reply
	err        error
	deliveries chan Delivery
	// dq holds pushes the reader took off the wire and the pump has not
	// handed to Deliveries yet. It has no bound of its own, so the reader
	// never stops reading replies for a consumer that waits on them (an
	// ack waits for its reply while the consumer holds deliveries back);
	// the subscription's window bounds it: the server pushes no more than
	// window messages before their deletes.
	dqmu   sync.Mutex
	dq     []Delivery
	dqEnd  bool
	dqWake chan struct{}
	others chan Reply
	done   chan struct{}
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
	e, _ := api.DecodeError(r.Body)
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
	c := &Client{conn: conn, pending: map[string]chan Reply{}, deliveries: make(chan Delivery, 16), dqWake: make(chan struct{}, 1),
		others: make(chan Reply, 64), done: make(chan struct{})}
	go c.read()
	go c.pump()
	return c, nil
}

// queueDelivery hands d (or, with end, the connection's end) to pump.
func (c *Client) queueDelivery(d Delivery, end bool) {
	c.dqmu.Lock()
	if end {
		c.dqEnd = true
	} else {
		c.dq = append(c.dq, d)
	}
	c.dqmu.Unlock()
	select {
	case c.dqWake <- struct{}{}:
	default:
	}
}

// pump moves queued pushes to Deliveries in order and closes it once the
// reader ended and the queue is empty.
func (c *Client) pump() {
	defer close(c.deliveries)
	var batch []Delivery
	for {
		c.dqmu.Lock()
		batch, c.dq = c.dq, batch[:0]
		end := c.dqEnd
		c.dqmu.Unlock()
		for i := range batch {
			c.deliveries <- batch[i]
			batch[i] = Delivery{}
		}
		if len(batch) == 0 && end {
			return
		}
		if len(batch) == 0 {
			<-c.dqWake
		}
	}
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
	defer c.queueDelivery(Delivery{}, true)
	var buf bytes.Buffer
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			c.fail(err)
			return
		}
		data, err := readFrame(&buf, r)
		if err != nil {
			c.fail(err)
			return
		}
		if bytes.HasPrefix(data, deliveryPrefix) {
			d, err := decodeDelivery(data)
			if err != nil {
				c.fail(fmt.Errorf("queue client: bad delivery: %w", err))
				return
			}
			c.queueDelivery(d, false)
			continue
		}
		id, rep, err := decodeReply(data)
		if err != nil {
			c.fail(fmt.Errorf("queue client: bad frame from server: %w", err))
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
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

// decodeDelivery reads a message_delivery frame: in one walk when it is
// shaped as the server writes it, else through encoding/json.
func decodeDelivery(data []byte) (Delivery, error) {
	if d, ok := walkDelivery(data); ok {
		return d, nil
	}
	var f struct {
		Body Delivery `json:"body"`
	}
	err := json.Unmarshal(data, &f)
	return f.Body, err
}

// walkDelivery descends into body and messages instead of skipping them
// whole first: each byte of a delivery is scanned once, not per level.
func walkDelivery(data []byte) (d Delivery, ok bool) {
	top := walkObject(data)
	for top.nextKey() {
		if top.keyEsc {
			return d, false
		}
		if string(top.key) != "body" {
			if !top.skip() {
				return d, false
			}
			continue
		}
		b := top.descend()
		if !b.obj {
			return d, false
		}
		for b.nextKey() {
			if string(b.key) == "messages" && !b.keyEsc {
				a := b.descend()
				if d.Messages, ok = walkMessages(&a, len(data)); !ok || !b.ascend(&a) {
					return d, false
				}
				continue
			}
			if !b.skip() {
				return d, false
			}
			switch string(b.key) {
			case "claim_id":
				d.ClaimID, ok = anyString(b.val)
			case "queue_name":
				d.QueueName, ok = anyString(b.val)
			case "subscription_id":
				d.SubscriptionID, ok = anyString(b.val)
			default:
				ok = !b.keyEsc
			}
			if !ok {
				return d, false
			}
		}
		if !top.ascend(&b) {
			return d, false
		}
	}
	return d, top.done()
}

// walkMessages reads the array a walks (size: the frame's, for the
// first guess of its length).
func walkMessages(a *walker, size int) ([]msgOut, bool) {
	if a.err != nil || a.obj {
		return nil, false
	}
	ms := make([]msgOut, 0, size/256+1)
	for a.nextKey() {
		var m msgOut
		o := a.descend()
		if !o.obj {
			return nil, false
		}
		for o.next() {
			ok := !o.keyEsc
			switch string(o.key) {
			case "id":
				m.ID, ok = anyString(o.val)
			case "href":
				m.Href, ok = anyString(o.val)
			case "claim_id":
				m.ClaimID, ok = anyString(o.val)
			case "ttl":
				m.TTL, ok = plainInt(o.val)
			case "age":
				m.Age, ok = plainInt(o.val)
			case "body":
				m.Body = json.RawMessage(o.val)
			}
			if !ok {
				return nil, false
			}
		}
		if !a.ascend(&o) {
			return nil, false
		}
		ms = append(ms, m)
	}
	return ms, a.done()
}

// decodeReply reads a reply frame: the Request-ID its request echo
// carries (empty when none), its status and body.
func decodeReply(data []byte) (string, Reply, error) {
	if id, r, ok := walkReply(data); ok {
		return id, r, nil
	}
	var r wireReply
	if err := json.Unmarshal(data, &r); err != nil {
		return "", Reply{}, err
	}
	var req struct {
		Headers struct {
			ID any `json:"Request-ID"`
		} `json:"headers"`
	}
	_ = json.Unmarshal(r.Request, &req) // the echo of a bad frame may be anything
	id, _ := req.Headers.ID.(string)
	return id, Reply{Status: r.Headers.Status, Body: r.Body}, nil
}

func walkReply(data []byte) (id string, r Reply, ok bool) {
	top := walkObject(data)
	for top.nextKey() {
		if top.keyEsc {
			return "", r, false
		}
		if string(top.key) == "request" && top.vstart < len(top.b) && top.b[top.vstart] == '{' {
			// The echo of a post holds the whole post: walked once.
			o := top.descend()
			if id, ok = walkRequestID(&o); !ok || !top.ascend(&o) {
				return "", r, false
			}
			continue
		}
		if !top.skip() {
			return "", r, false
		}
		switch string(top.key) {
		case "request":
			if string(top.val) != "null" {
				return "", r, false
			}
		case "headers":
			h := walkObject(top.val)
			for h.next() {
				if h.keyEsc {
					return "", r, false
				}
				if string(h.key) == "status" {
					n, ok := plainInt(h.val)
					if !ok {
						return "", r, false
					}
					r.Status = int(n)
				}
			}
			if !h.done() {
				return "", r, false
			}
		case "body":
			r.Body = json.RawMessage(top.val)
		}
	}
	return id, r, top.done()
}

// walkRequestID finds headers["Request-ID"] in the request echo o
// walks; ok is false only when the walk cannot tell (then encoding/json
// decides).
func walkRequestID(o *walker) (string, bool) {
	id := ""
	for o.next() {
		if o.keyEsc || foldOnly(o.key, "headers") {
			return "", false
		}
		if string(o.key) != "headers" {
			continue
		}
		if len(o.val) == 0 || o.val[0] != '{' {
			return "", false
		}
		h := walkObject(o.val)
		for h.next() {
			if h.keyEsc || foldOnly(h.key, "Request-ID") {
				return "", false
			}
			if string(h.key) == "Request-ID" {
				s, ok := anyString(h.val)
				if !ok {
					return "", false
				}
				id = s
			}
		}
		if !h.done() {
			return "", false
		}
	}
	return id, o.done()
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
	bb, ok := body.(Encoded)
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
//
// Frames are coalesced: the caller that finds no write in progress
// writes its frame and every frame queued meanwhile, in one syscall per
// round, so many callers in flight cost few writes. A caller whose frame
// another caller writes returns at once; if that write fails, the
// connection is closed, so its pending Do fails with ErrClientClosed.
func (c *Client) WriteRaw(b []byte) error {
	c.pmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.pmu.Unlock()
		return err
	}
	c.pend = appendMaskedFrame(c.pend, b)
	if c.writing {
		c.pmu.Unlock()
		return nil
	}
	c.writing = true
	var err error
	for len(c.pend) > 0 && err == nil {
		buf := c.pend
		c.pend = c.spare[:0]
		c.pmu.Unlock()
		err = c.writeNet(buf)
		c.pmu.Lock()
		if cap(buf) <= maxWriteBatch*2 {
			c.spare = buf
		}
	}
	c.writing = false
	if err != nil {
		c.werr, c.pend = err, nil
	}
	c.pmu.Unlock()
	if err != nil {
		_ = c.conn.Close()
	}
	return err
}

func (c *Client) writeNet(buf []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	nc := c.conn.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := nc.Write(buf)
	return err
}

// appendMaskedFrame appends p as one final text frame masked with a
// random key, as RFC 6455 5.3 requires of a client.
func appendMaskedFrame(b, p []byte) []byte {
	const finText, masked = 0x81, 0x80
	switch n := len(p); {
	case n <= 125:
		b = append(b, finText, masked|byte(n))
	case n <= 0xffff:
		b = append(b, finText, masked|126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, masked|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range b[start:] {
		b[start+i] ^= key[i&3]
	}
	return b
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
	<-c.done
	for range c.deliveries { // unblock the pump if nobody drains
	}
	return err
}
