package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sidestream/sidestream/sidecar/internal/rawio"
)

// delivery is one event as a subscriber received it.
type delivery struct {
	seq uint64
	gap bool
	// offline marks an offline marker: no event, its id is the
	// subscriber's cursor (neither a delivery nor a repeat).
	offline bool
	// data is the event's payload (valid until the next read), where
	// stampOf finds its time: only when no other subscriber of the
	// stream has parsed it yet (stampTable).
	data []byte
	ws   bool
	at   time.Time // receive time
}

// stampOf is the event's own time (RFC 3339), if any: over SSE the
// data's "timestamp" field; over WebSocket that field where it has one
// (as over SSE: for events the bench published, the publish time), else
// the envelope's "time", the event time.
func (d *delivery) stampOf() []byte {
	if !d.ws {
		return stringField(d.data, keyTimestamp)
	}
	if st := stringField(d.data, keyTimestamp); st != nil {
		return st
	}
	return stringField(d.data, keyTime)
}

// stampArrival sets the receive time when the event needed a network read
// (read): an event wholly buffered by an earlier read arrived with it.
// Asking whether the buffer was empty before the read is not enough: a
// subscriber that lags finds each refill ending mid-event, its buffer is
// never empty, and a receive time taken then would stay frozen (later
// events would seem to arrive before they were sent).
func (d *delivery) stampArrival(read bool) {
	if read || d.at.IsZero() {
		d.at = time.Now()
	}
}

// errWouldBlock is a polled connection's "nothing to read yet": the
// decoders keep what they read and resume on the next readiness.
var errWouldBlock = errors.New("no data yet")

// readCounter counts the reads of a connection, to tell which events
// needed one. Only the connection's one reader touches n.
type readCounter struct {
	net.Conn
	raw syscall.RawConn // nil: read through Conn
	n   uint64
	// poll: reads never wait; one read a readiness (spent says it is
	// done), so a decoder asking for more gets errWouldBlock without a
	// system call, and the level-triggered poller reports the rest;
	// full says that read filled its buffer.
	poll, spent, full bool
}

// newReadCounter reads c with raw system calls (see package rawio): the
// generator's subscribers should not cost it P hand-offs.
func newReadCounter(c net.Conn) *readCounter { return &readCounter{Conn: c, raw: rawio.Conn(c)} }

func (c *readCounter) Read(p []byte) (int, error) {
	if c.poll {
		if c.spent {
			return 0, errWouldBlock
		}
		c.spent = true
		c.n++
		n, err := readNow(c.raw, p)
		c.full = n == len(p)
		return n, err
	}
	c.n++
	return rawio.Read(c.Conn, c.raw, p)
}

// subscriber reads deliveries from one connection.
type subscriber interface {
	read(d *delivery) error
	// buffered reports whether the next read needs no network read.
	buffered() bool
	// counter is the connection under the decoder.
	counter() *readCounter
	Close() error
}

var typeGap, typeOffline = []byte("gap"), []byte("offline")

// sseSub reads SSE events; the timestamp is the data's "timestamp" field
// (log and magic events carry one).
type sseSub struct{ *sseConn }

func (s sseSub) counter() *readCounter { return s.rc }

func (s sseSub) read(d *delivery) error {
	reads := s.rc.n
	ev, err := s.next()
	if err != nil {
		return err
	}
	d.stampArrival(reads != s.rc.n)
	seq, ok := parseUint(ev.ID)
	if !ok {
		return fmt.Errorf("%w: sse event id %.40q is not a seq", ErrProtocol, ev.ID)
	}
	d.seq, d.gap, d.offline = seq, bytes.Equal(ev.Event, typeGap), bytes.Equal(ev.Event, typeOffline)
	d.data, d.ws = ev.Data, false
	return nil
}

// wsSub reads WebSocket envelopes {stream,seq,type,time,data}.
type wsSub struct{ *wsConn }

func (w wsSub) counter() *readCounter { return w.rc }

func (w wsSub) read(d *delivery) error {
	reads := w.rc.n
	p, err := w.next()
	if err != nil {
		return err
	}
	d.stampArrival(reads != w.rc.n)
	seq, ok := uintField(p, keySeq)
	if !ok {
		return fmt.Errorf("%w: ws frame without seq: %.80q", ErrProtocol, p)
	}
	typ := stringField(p, keyType)
	d.seq, d.gap, d.offline = seq, bytes.Equal(typ, typeGap), bytes.Equal(typ, typeOffline)
	d.data, d.ws = p, true
	return nil
}

// subscribe opens an SSE or WS subscriber on path of host.
func (e *env) subscribe(ctx context.Context, host, transport, path string) (subscriber, error) {
	if transport == "ws" {
		c, err := e.openWS(ctx, host, path)
		if err != nil {
			return nil, err
		}
		return wsSub{c}, nil
	}
	c, err := e.openSSE(ctx, host, path)
	if err != nil {
		return nil, err
	}
	return sseSub{c}, nil
}

// consumer checks the seqs of one subscriber and records latencies.
type consumer struct {
	e       *env
	key     int
	h       *latencies // nil: no latency
	h2      *latencies // a second histogram of the same values (nil: none)
	last    uint64
	seen    bool
	count   int64 // events delivered (gap markers excluded)
	pending int64 // of count, not yet added to ops
	ops     *atomic.Int64
	lastSeq atomic.Uint64 // last seq, published per network read
	maxSeq  uint64
	stamps  stampCache
	// shared holds the times of the stream's events already parsed by
	// any of its subscribers (nil: each parses its own).
	shared *stampTable
	lat    []int64
}

// run reads until ctx ends (nil), limit events arrived (nil; 0: no
// limit), or the connection fails. measure says whether latency counts now.
func (c *consumer) run(ctx context.Context, sub subscriber, limit int64, measure func() bool) error {
	defer c.flush()
	var d delivery
	for limit <= 0 || c.count < limit {
		if err := sub.read(&d); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.see(&d, measure == nil || measure())
		// Shared counters are touched once per network read, not per
		// event: a thousand subscribers would fight over one cache line.
		if !sub.buffered() || len(c.lat) >= 256 {
			c.flush()
		}
	}
	return nil
}

// drain reads the deliveries a polled subscriber has at hand (see
// poll_linux.go): until a read would wait (finished false), limit events
// arrived or the connection failed (finished true, err says which).
func (c *consumer) drain(sub subscriber, d *delivery, limit int64, measure func() bool) (finished bool, err error) {
	defer c.flush() // once a readiness, as run does once a network read
	for limit <= 0 || c.count < limit {
		if err := sub.read(d); err != nil {
			if errors.Is(err, errWouldBlock) {
				return false, nil
			}
			return true, err
		}
		c.see(d, measure == nil || measure())
		if len(c.lat) >= 256 {
			c.flush()
		}
	}
	return true, nil
}

// see accounts one delivery: a jump in seq is loss, a repeat a duplicate.
func (c *consumer) see(d *delivery, measure bool) {
	if d.offline {
		c.e.offline.Add(1)
		return
	}
	switch {
	case !c.seen:
		c.seen = true
	case d.seq <= c.last:
		c.e.dups.Add(1)
		return
	case d.seq > c.last+1 && !d.gap:
		c.e.lost.Add(int64(d.seq - c.last - 1))
	case d.gap:
		c.e.lost.Add(int64(d.seq - c.last))
	}
	c.last = d.seq
	c.maxSeq = max(c.maxSeq, d.seq)
	if d.gap {
		return
	}
	c.count++
	c.pending++
	if c.h != nil && measure {
		if ns, ok := c.stampNS(d); ok {
			c.lat = append(c.lat, (d.at.UnixNano()-ns)/1000)
		}
	}
}

// stampNS is the event's own time in Unix ns: from the stream's shared
// table when another subscriber parsed it, else parsed here (and shared).
// A thousand subscribers of one stream read every event a thousand
// times; finding and parsing its time once instead of each time was 9%
// of the generator's CPU in the fanout bench.
func (c *consumer) stampNS(d *delivery) (int64, bool) {
	if ns, ok := c.shared.lookup(d.seq); ok {
		return ns, true
	}
	ns, ok := c.stamps.parse(d.stampOf())
	if ok {
		c.shared.store(d.seq, ns)
	}
	return ns, ok
}

func (c *consumer) flush() {
	c.ops.Add(c.pending)
	c.pending = 0
	c.lastSeq.Store(c.last)
	if c.h != nil {
		c.h.record(c.key, c.lat...)
	}
	if c.h2 != nil {
		c.h2.record(c.key, c.lat...)
	}
	c.lat = c.lat[:0]
}
