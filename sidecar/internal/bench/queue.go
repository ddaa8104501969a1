package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/queueclient"
)

const (
	// queueBatch is the default messages per post and per claim.
	queueBatch = 50
	// queueInFlight is the posts (per producer) and deletes (per
	// consumer) awaiting their acknowledgement: enough that the server's
	// group commits fill (as BenchmarkProduceConsumeWS in queueclient).
	queueInFlight = 32
	// queueWindow is the claims a subscription keeps unacknowledged.
	queueWindow = 40
)

// runQueue drives producers and consumers over the queue WebSocket
// (/v2/ws) of one fresh queue. A producer's post counts once acknowledged
// (durable); a consumer receives messages through its subscription's
// claims and deletes them, and a message counts (ops) once its delete was
// acknowledged. Every message carries its post time, so the delivery
// histogram is post → receive.
func runQueue(ctx context.Context, e *env) error {
	q := &queueRun{e: e, prods: orInt(e.o.Producers, 2), cons: orInt(e.o.Consumers, 2), size: orInt(e.o.Size, 100),
		batch: orInt(e.o.Batch, queueBatch)}
	if q.batch < 1 || q.batch > 100 {
		return fmt.Errorf("%w: --batch %d: a post or claim holds 1 to 100 messages", ErrUsage, q.batch)
	}
	e.rep.OpsUnit = "messages"
	e.param("producers", q.prods)
	e.param("consumers", q.cons)
	e.param("size", q.size)
	e.param("batch", q.batch)
	e.param("ack_max", orInt(e.o.AckMax, queueclient.DefaultAckMax))
	e.param("duration", e.o.Duration.String())
	q.tg = queueclient.Target{URL: e.o.Target, Token: e.o.Token, Queue: "bench-" + runID(), Project: "bench", ClientID: uuid.NewString()}
	q.hpost, q.hdel = e.hist("post"), e.hist("delivery")
	for i := range q.seen {
		q.seen[i].m = map[[2]uint64]struct{}{}
	}
	q.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	return q.run(ctx)
}

type queueRun struct {
	e                        *env
	prods, cons, size, batch int
	tg                       queueclient.Target
	hpost, hdel              *latencies

	produced, received atomic.Int64
	seeds              [2]maphash.Seed
	// seen holds a 128-bit hash of every message id received: keys
	// without pointers, which the collector does not scan (a map of a
	// million id strings made GC the generator's largest cost).
	seen [64]struct {
		mu sync.Mutex
		m  map[[2]uint64]struct{}
	}
}

func (q *queueRun) run(ctx context.Context) error {
	e := q.e
	cctx, stopCons := context.WithCancel(ctx)
	defer stopCons()
	errs := make(chan error, q.prods+q.cons)
	var cwg, pwg sync.WaitGroup
	ready := make(chan struct{}, q.cons)
	for i := range q.cons {
		cwg.Go(func() { errs <- q.consume(cctx, i, ready) })
	}
	for range q.cons {
		select {
		case <-ready:
		case err := <-errs:
			return fmt.Errorf("consumer: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	limit := e.o.MaxOps
	if limit <= 0 {
		limit = maxRequests
	}
	// Producers stop between posts, not in one: a post cancelled while
	// in flight may be stored without its acknowledgement being counted.
	var reserved atomic.Int64
	var stop atomic.Bool
	for i := range q.prods {
		pwg.Go(func() { errs <- q.produce(ctx, i, &stop, &reserved, limit) })
	}
	prodsDone := make(chan struct{})
	go func() { pwg.Wait(); close(prodsDone) }()
	wait := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-prodsDone:
		case <-ctx.Done():
		}
	}
	wait(e.o.Warmup)
	e.openWindow()
	wait(e.o.Duration)
	e.closeWindow()
	stop.Store(true)
	<-prodsDone
	caught := q.drain(ctx)
	stopCons()
	cwg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && first == nil {
			first = err
		}
	}
	q.report(caught)
	if first != nil {
		return first
	}
	return ctx.Err()
}

// drain waits (bounded) until consumers received everything acknowledged.
func (q *queueRun) drain(ctx context.Context) time.Duration {
	start := time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for q.received.Load() < q.produced.Load() && time.Since(start) < catchUp {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-t.C:
		}
	}
	// Deletes still in flight finish before the consumers stop.
	for q.e.opsNow() < q.received.Load() && time.Since(start) < catchUp {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-t.C:
		}
	}
	return time.Since(start)
}

func (q *queueRun) report(caught time.Duration) {
	e := q.e
	produced, received := q.produced.Load(), q.received.Load()
	if lost := produced - received; lost > 0 {
		e.lost.Add(lost)
	}
	e.metric("produced_total", float64(produced))
	e.metric("received_total", float64(received))
	e.metric("catch_up_seconds", caught.Seconds())
	e.after(func(r *Report) {
		r.check("messages/s produced and consumed", "≥ 100,000", group(r.Rate), r.Rate >= 100000)
		r.check("received = produced", group(float64(produced)), group(float64(received)), received == produced)
		r.check("lost messages", "0", fmt.Sprint(r.Lost), r.Lost == 0)
		r.check("duplicates", "0", fmt.Sprint(r.Duplicates), r.Duplicates == 0)
	})
}

func (q *queueRun) produce(ctx context.Context, w int, stop *atomic.Bool, reserved *atomic.Int64, limit int64) error {
	c, err := q.dial(ctx)
	if err != nil {
		return err
	}
	defer q.hangUp(c)
	pad := strings.Repeat("x", max(q.size-40, 0))
	var wg sync.WaitGroup
	errs := make(chan error, queueInFlight)
	for range queueInFlight {
		wg.Go(func() {
			for ctx.Err() == nil && !stop.Load() {
				// Only the window's messages count against limit (a warm-up
				// that used them all would leave the window empty); the
				// last post takes what is left.
				n := int64(q.batch)
				if q.e.measuring() {
					first := reserved.Add(n) - n
					if first >= limit {
						return
					}
					n = min(n, limit-first)
				}
				if q.e.pace(ctx, int(n)) != nil {
					return
				}
				t0 := time.Now()
				// Each body holds the post time, for the delivery histogram.
				err := c.Post(ctx, q.tg.Queue, int(n), 0, func(b []byte, _ int) []byte {
					b = strconv.AppendInt(append(b, `{"t":`...), t0.UnixNano(), 10)
					return append(append(append(b, `,"p":"`...), pad...), `"}`...)
				})
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("producer %d: post: %w", w, err)
					}
					return
				}
				q.hpost.record(w, time.Since(t0).Microseconds())
				q.produced.Add(n)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (q *queueRun) dial(ctx context.Context) (*queueclient.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := q.tg.Dial(dctx)
	if err != nil {
		return nil, err
	}
	q.e.conns.Add(1)
	return c, nil
}

func (q *queueRun) hangUp(c *queueclient.Client) {
	_ = c.Close()
	q.e.conns.Add(-1)
}

// consume runs one consumer: queueclient's, which acknowledges
// deliveries that arrive while all its acks are out together. A message
// counts (ops) once its delete was acknowledged.
func (q *queueRun) consume(ctx context.Context, w int, ready chan<- struct{}) error {
	k, err := queueclient.Subscribe(ctx, queueclient.ConsumeOptions{
		Target: q.consumerTarget(w), Batch: q.batch, ClaimTTL: 300 * time.Second, Window: queueWindow * q.batch,
		Ack: true, InFlight: queueInFlight, AckMax: q.e.o.AckMax,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer %d: %w", w, err)
	}
	defer k.Close()
	q.e.conns.Add(1)
	defer q.e.conns.Add(-1)
	q.e.opsFrom(k.Acked)
	ready <- struct{}{}
	lat := make([]int64, 0, q.batch) // Run hands deliveries over on one goroutine
	_, err = k.Run(ctx, func(d api.QueueDelivery) {
		now := time.Now().UnixNano()
		lat = lat[:0]
		for _, m := range d.Messages {
			q.mark(m.ID)
			if t, ok := postTime(m.Body); ok {
				lat = append(lat, (now-t)/1000)
			}
		}
		q.hdel.record(w, lat...)
		q.received.Add(int64(len(d.Messages)))
	})
	if ctx.Err() != nil {
		return nil // stopped after the drain
	}
	if err != nil {
		return fmt.Errorf("consumer %d: %w", w, err)
	}
	return nil
}

// consumerTarget is the queue as consumer w reaches it: through the
// subscriber targets, round-robin (producers use the first target).
func (q *queueRun) consumerTarget(w int) queueclient.Target {
	tg := q.tg
	tg.URL = q.e.subURL(w)
	return tg
}

// mark counts a repeated message id as a duplicate.
func (q *queueRun) mark(id string) {
	key := [2]uint64{maphash.String(q.seeds[0], id), maphash.String(q.seeds[1], id)}
	s := &q.seen[key[0]%uint64(len(q.seen))]
	s.mu.Lock()
	_, dup := s.m[key]
	s.m[key] = struct{}{}
	s.mu.Unlock()
	if dup {
		q.e.dups.Add(1)
	}
}

// postTime reads the "t" (unix ns) a producer put first in the body.
func postTime(body []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(body, []byte(`{"t":`))
	if !ok {
		return 0, false
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, false
	}
	t, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return t, err == nil
}
