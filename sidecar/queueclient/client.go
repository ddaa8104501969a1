// Package queueclient is the Go client of the sidestream queue API over
// its WebSocket (/v2/ws, OpenStack Zaqar v2 frames): a connection that
// pipelines frames and matches replies (Client), and on top of it the
// producer and consumer that `sidestream queue produce|consume` run
// (Produce, Subscribe, Consume). Wire types are those of sidecar/api.
package queueclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/apiclient"
	"github.com/sidestream/sidestream/sidecar/internal/jsonwalk"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
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
	deliveries chan api.QueueDelivery
	// dq holds pushes the reader took off the wire and the pump has not
	// handed to Deliveries yet. It has no bound of its own, so the reader
	// never stops reading replies for a consumer that waits on them (an
	// ack waits for its reply while the consumer holds deliveries back);
	// the subscription's window bounds it: the server pushes no more than
	// window messages before their deletes.
	dqmu   sync.Mutex
	dq     []api.QueueDelivery
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
// status is not 2xx, as the *apiclient.APIError every client reports.
func (r Reply) Err() error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	return apiclient.ParseAPIError(r.Status, r.Body)
}

// ErrClientClosed is returned once the connection ended.
var ErrClientClosed = errors.New("queue client: connection closed")

// Dial opens a WebSocket to url (ws:// or http://…/v2/ws) with hdr on
// the upgrade request (Authorization, X-Project-Id, Client-ID).
func Dial(ctx context.Context, url string, hdr http.Header) (*Client, error) {
	return dial(ctx, url, wire.DialOptions{Header: hdr})
}

func dial(ctx context.Context, url string, o wire.DialOptions) (*Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := wire.DialWS(dctx, url, o)
	var he *wire.HandshakeError
	switch {
	case errors.As(err, &he):
		return nil, fmt.Errorf("queue client: dial %s: %w", url, apiclient.ParseAPIError(he.Status, he.Body))
	case err != nil:
		return nil, fmt.Errorf("queue client: dial %s: %w", url, err)
	}
	c := &Client{conn: conn, pending: map[string]chan Reply{}, deliveries: make(chan api.QueueDelivery, 16), dqWake: make(chan struct{}, 1),
		others: make(chan Reply, 64), done: make(chan struct{})}
	go c.read()
	go c.pump()
	return c, nil
}

// queueDelivery hands d (or, with end, the connection's end) to pump.
func (c *Client) queueDelivery(d api.QueueDelivery, end bool) {
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
	var batch []api.QueueDelivery
	for {
		c.dqmu.Lock()
		batch, c.dq = c.dq, batch[:0]
		end := c.dqEnd
		c.dqmu.Unlock()
		for i := range batch {
			c.deliveries <- batch[i]
			batch[i] = api.QueueDelivery{}
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
	defer c.queueDelivery(api.QueueDelivery{}, true)
	var buf bytes.Buffer
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			c.fail(err)
			return
		}
		// Read through buf (reused), then an exact-size copy: deliveries
		// keep slices of it (message bodies).
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.fail(err)
			return
		}
		data := bytes.Clone(buf.Bytes())
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
func decodeDelivery(data []byte) (api.QueueDelivery, error) {
	if d, ok := walkDelivery(data); ok {
		return d, nil
	}
	var f struct {
		Body api.QueueDelivery `json:"body"`
	}
	err := json.Unmarshal(data, &f)
	return f.Body, err
}

// walkDelivery descends into body and messages instead of skipping them
// whole first: each byte of a delivery is scanned once, not per level.
func walkDelivery(data []byte) (d api.QueueDelivery, ok bool) {
	top := jsonwalk.Object(data)
	for top.NextKey() {
		if top.KeyEsc {
			return d, false
		}
		if string(top.Key) != "body" {
			if !top.Skip() {
				return d, false
			}
			continue
		}
		b := top.Descend()
		if !b.IsObject() {
			return d, false
		}
		for b.NextKey() {
			if string(b.Key) == "messages" && !b.KeyEsc {
				a := b.Descend()
				if d.Messages, ok = walkMessages(&a, len(data)); !ok || !b.Ascend(&a) {
					return d, false
				}
				continue
			}
			if !b.Skip() {
				return d, false
			}
			switch string(b.Key) {
			case "claim_id":
				d.ClaimID, ok = jsonwalk.AnyString(b.Val)
			case "queue_name":
				d.QueueName, ok = jsonwalk.AnyString(b.Val)
			case "subscription_id":
				d.SubscriptionID, ok = jsonwalk.AnyString(b.Val)
			default:
				ok = !b.KeyEsc
			}
			if !ok {
				return d, false
			}
		}
		if !top.Ascend(&b) {
			return d, false
		}
	}
	return d, top.Done()
}

// walkMessages reads the array a walks (size: the frame's, for the
// first guess of its length).
func walkMessages(a *jsonwalk.Walker, size int) ([]api.QueueMessage, bool) {
	if a.Err() != nil || a.IsObject() {
		return nil, false
	}
	ms := make([]api.QueueMessage, 0, size/256+1)
	// A delivery's messages share one claim id: one string, not one each.
	var claimRaw []byte
	var claimID string
	for a.NextKey() {
		var m api.QueueMessage
		o := a.Descend()
		if !o.IsObject() {
			return nil, false
		}
		for o.Next() {
			ok := !o.KeyEsc
			switch string(o.Key) {
			case "id":
				m.ID, ok = jsonwalk.AnyString(o.Val)
			case "href":
				m.Href, ok = jsonwalk.AnyString(o.Val)
			case "claim_id":
				if claimRaw == nil || !bytes.Equal(o.Val, claimRaw) {
					claimID, ok = jsonwalk.AnyString(o.Val)
					claimRaw = o.Val
				}
				m.ClaimID = claimID
			case "ttl":
				m.TTL, ok = jsonwalk.PlainInt(o.Val)
			case "age":
				m.Age, ok = jsonwalk.PlainInt(o.Val)
			case "body":
				m.Body = json.RawMessage(o.Val)
			}
			if !ok {
				return nil, false
			}
		}
		if !a.Ascend(&o) {
			return nil, false
		}
		ms = append(ms, m)
	}
	return ms, a.Done()
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
	top := jsonwalk.Object(data)
	for top.NextKey() {
		if top.KeyEsc {
			return "", r, false
		}
		if string(top.Key) == "request" && top.ValueStartsWith('{') {
			// The echo of a post holds the whole post: walked once.
			o := top.Descend()
			if id, ok = walkRequestID(&o); !ok || !top.Ascend(&o) {
				return "", r, false
			}
			continue
		}
		if !top.Skip() {
			return "", r, false
		}
		switch string(top.Key) {
		case "request":
			if string(top.Val) != "null" {
				return "", r, false
			}
		case "headers":
			h := jsonwalk.Object(top.Val)
			for h.Next() {
				if h.KeyEsc {
					return "", r, false
				}
				if string(h.Key) == "status" {
					n, ok := jsonwalk.PlainInt(h.Val)
					if !ok {
						return "", r, false
					}
					r.Status = int(n)
				}
			}
			if !h.Done() {
				return "", r, false
			}
		case "body":
			r.Body = json.RawMessage(top.Val)
		}
	}
	return id, r, top.Done()
}

// walkRequestID finds headers["Request-ID"] in the request echo o
// walks; ok is false only when the walk cannot tell (then encoding/json
// decides).
func walkRequestID(o *jsonwalk.Walker) (string, bool) {
	id := ""
	for o.Next() {
		if o.KeyEsc || jsonwalk.FoldOnly(o.Key, "headers") {
			return "", false
		}
		if string(o.Key) != "headers" {
			continue
		}
		if len(o.Val) == 0 || o.Val[0] != '{' {
			return "", false
		}
		h := jsonwalk.Object(o.Val)
		for h.Next() {
			if h.KeyEsc || jsonwalk.FoldOnly(h.Key, "Request-ID") {
				return "", false
			}
			if string(h.Key) == "Request-ID" {
				s, ok := jsonwalk.AnyString(h.Val)
				if !ok {
					return "", false
				}
				id = s
			}
		}
		if !h.Done() {
			return "", false
		}
	}
	return id, o.Done()
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

// Do sends one frame and waits for its reply. headers may be nil; body
// is encoded with encoding/json, except a json.RawMessage, which is sent
// as is and must be valid JSON.
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
	bb, ok := body.(json.RawMessage)
	if !ok {
		if bb, err = json.Marshal(body); err != nil {
			return Reply{}, err
		}
	}
	ab, _ := json.Marshal(action)
	b := make([]byte, 0, len(ab)+len(hb)+len(bb)+32)
	b = append(append(append(b, `{"action":`...), ab...), `,"headers":`...)
	b = append(append(append(append(b, hb...), `,"body":`...), bb...), '}')
	return c.roundTrip(ctx, id, b)
}

// roundTrip writes frame b, whose Request-ID header is id, and waits for
// its reply.
func (c *Client) roundTrip(ctx context.Context, id string, b []byte) (Reply, error) {
	ch := make(chan Reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return Reply{}, c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.writeText(b); err != nil {
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

// writeText sends one text frame. Frames are coalesced: the caller that finds no write in progress
// writes its frame and every frame queued meanwhile, in one syscall per
// round, so many callers in flight cost few writes. A caller whose frame
// another caller writes returns at once; if that write fails, the
// connection is closed, so its pending Do fails with ErrClientClosed.
func (c *Client) writeText(b []byte) error {
	c.pmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.pmu.Unlock()
		return err
	}
	key := wire.RandomMask() // a client masks every frame (RFC 6455 §5.3)
	c.pend = wire.AppendFrame(c.pend, wire.OpText, b, &key)
	if c.writing {
		c.pmu.Unlock()
		return nil
	}
	c.writing = true
	// Let the callers about to send run first: under load their frames
	// then share this write; an idle client loses only the yield.
	c.pmu.Unlock()
	runtime.Gosched()
	c.pmu.Lock()
	var err error
	for len(c.pend) > 0 && err == nil {
		buf := c.pend
		c.pend = c.spare[:0]
		c.pmu.Unlock()
		err = c.writeNet(buf)
		c.pmu.Lock()
		if cap(buf) <= maxSpare {
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

// maxSpare bounds the write buffer kept for the next round.
const maxSpare = 512 << 10

func (c *Client) writeNet(buf []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	nc := c.conn.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := nc.Write(buf)
	return err
}

// Err returns why the connection ended (wrapping ErrClientClosed), or
// nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Deliveries yields subscription pushes; it closes with the connection,
// or after EndDeliveries. A consumer that subscribes must drain it.
func (c *Client) Deliveries() <-chan api.QueueDelivery { return c.deliveries }

// EndDeliveries closes Deliveries once the pushes received so far were
// handed out. Call it after the reply to the last subscription_delete:
// the server sends that reply after the subscription's last delivery, so
// draining Deliveries then yields every claim the connection was sent.
func (c *Client) EndDeliveries() { c.queueDelivery(api.QueueDelivery{}, true) }

// WriteMessage sends data as one message of messageType
// (websocket.TextMessage or BinaryMessage) exactly as given, not as a
// request of Do: a malformed frame's error reply, which matches no Do,
// arrives on Others.
func (c *Client) WriteMessage(messageType int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteMessage(messageType, data)
}

// Others yields replies that match no Do call (answers to WriteMessage).
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
