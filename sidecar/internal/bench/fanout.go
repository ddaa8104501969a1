package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func orFloat(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}

func (e *env) transport(def string, allowBoth bool) (string, error) {
	t := e.o.Transport
	if t == "" {
		t = def
	}
	if t == "sse" || t == "ws" || (allowBoth && t == "both") {
		return t, nil
	}
	return "", fmt.Errorf("%w: transport %q (want sse or ws)", ErrUsage, t)
}

// pool is the subscribers of a run: each is read, until the pool's
// context ends, by a few epoll loops where there are (poll_linux.go),
// else on a goroutine of its own.
type pool struct {
	e      *env
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	cons   []*consumer
	loops  pollLoops
	size   int // subscribers expected
}

// newPool makes a pool for about n subscribers (see pollFrom).
func (e *env) newPool(ctx context.Context, n int) *pool {
	p := &pool{e: e, size: n}
	p.ctx, p.cancel = context.WithCancel(ctx)
	return p
}

// add opens a subscriber on path of host and starts its reader, which
// stops after limit events (0: never) and then calls done (may be nil).
func (p *pool) add(host, transport, path string, c *consumer, limit int64, measure func() bool, done func(err error)) error {
	sub, err := p.e.subscribe(p.ctx, host, transport, path)
	if err != nil {
		p.e.fail(err)
		return err
	}
	p.e.conns.Add(1)
	p.mu.Lock()
	p.cons = append(p.cons, c)
	p.mu.Unlock()
	r := &reader{sub: sub, c: c, limit: limit, measure: measure, done: done}
	if !p.poll(r) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			r.finish(p, c.run(p.ctx, sub, limit, measure))
		}()
	}
	return nil
}

// reader is one subscriber being read and what to do when it ends.
type reader struct {
	sub     subscriber
	c       *consumer
	d       delivery
	limit   int64
	measure func() bool
	done    func(err error)
	pollID  int // its index in its poll loop (poll_linux.go)
}

// finish closes the subscriber and reports err (nil: it ended well).
func (r *reader) finish(p *pool, err error) {
	_ = r.sub.Close()
	p.e.conns.Add(-1)
	if err != nil {
		p.e.fail(err)
	}
	if r.done != nil {
		r.done(err)
	}
}

// headSeq is the highest seq any subscriber has seen: the stream's head as
// near as the subscribers know it (one lagging subscriber would
// undercount what was published).
func (p *pool) headSeq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var head uint64
	for _, c := range p.cons {
		head = max(head, c.lastSeq.Load())
	}
	return head
}

// close stops every reader and waits for them.
func (p *pool) close() {
	p.cancel()
	p.wg.Wait()
}

// runFanout: N subscribers spread over S streams, each stream's events
// at R/s: made by a magic emitter on the server, or published by the
// bench over HTTP (POST /track/{user}, the publish time in each event, so
// the latency is end to end). Publishers use the first target;
// subscribers spread over the subscriber targets. When some of them are
// on the publisher's node and some are not, their latencies are also
// kept apart: the difference is what crossing nodes adds.
func runFanout(ctx context.Context, e *env) error {
	subs, rate, nstreams := orInt(e.o.Subscribers, 1000), orFloat(e.o.Rate, 1000), orInt(e.o.Streams, 1)
	tr, err := e.transport("sse", false)
	if err != nil {
		return err
	}
	src, err := e.publishSource()
	if err != nil {
		return err
	}
	e.rep.OpsUnit = "deliveries"
	e.param("subscribers", subs)
	e.param("rate", rate)
	e.param("streams", nstreams)
	e.param("publish", src)
	e.param("transport", tr)
	e.param("duration", e.o.Duration.String())
	streams, remove, err := e.fanoutStreams(ctx, src, tr, nstreams, rate)
	defer remove()
	if err != nil {
		return err
	}
	h := e.hist("delivery")
	split := e.splitHists()
	pools := make([]*pool, nstreams)
	stamps := make([]*stampTable, nstreams)
	for i := range pools {
		pools[i] = e.newPool(ctx, (subs+nstreams-1)/nstreams)
		defer pools[i].close()
		stamps[i] = newStampTable(time.Now())
	}
	t0 := time.Now()
	err = e.connectAll(ctx, subs, func(_ context.Context, i int) error {
		c := &consumer{e: e, key: i, h: h, h2: split(i), ops: &e.ops, shared: stamps[i%nstreams]}
		return pools[i%nstreams].add(e.subHost(i), tr, streams[i%nstreams].path, c, 0, e.measuring, nil)
	})
	if err != nil {
		return fmt.Errorf("connect subscribers: %w", err)
	}
	e.metric("connect_seconds", time.Since(t0).Seconds())
	stopPub := e.startPublishers(ctx, src, streams, rate)
	defer stopPub()
	if err := sleep(ctx, e.o.Warmup); err != nil {
		return err
	}
	seq0 := headSeqs(pools)
	e.openWindow()
	if err := sleep(ctx, e.o.Duration); err != nil {
		return err
	}
	e.closeWindow()
	published := headSeqs(pools) - seq0
	stopPub()
	for _, p := range pools {
		p.close()
	}
	e.fanoutChecks(subs, nstreams, rate, published, src)
	return nil
}

// headSeqs sums the streams' heads as their subscribers know them.
func headSeqs(pools []*pool) uint64 {
	var sum uint64
	for _, p := range pools {
		sum += p.headSeq()
	}
	return sum
}

// Names of the split fanout histograms.
const (
	histSameNode  = "delivery-same-node"
	histCrossNode = "delivery-cross-node"
)

// splitHists returns, for subscriber i, its histogram by where it is
// served: on the publisher's node or another one. It returns nil for all
// when every subscriber is on the same side (nothing to compare).
func (e *env) splitHists() func(i int) *latencies {
	same, cross := 0, 0
	for _, h := range e.subs {
		if h == e.host {
			same++
		} else {
			cross++
		}
	}
	if same == 0 || cross == 0 {
		return func(int) *latencies { return nil }
	}
	hs, hc := e.hist(histSameNode), e.hist(histCrossNode)
	e.after(crossNodeAdded)
	return func(i int) *latencies {
		if e.subHost(i) == e.host {
			return hs
		}
		return hc
	}
}

// crossNodeAdded reports what delivery through another node adds to the
// latency of the publisher's own node, at the median and the p99.
func crossNodeAdded(r *Report) {
	var same, cross *Latency
	for i := range r.Latencies {
		switch r.Latencies[i].Name {
		case histSameNode:
			same = &r.Latencies[i]
		case histCrossNode:
			cross = &r.Latencies[i]
		}
	}
	if same == nil || cross == nil || same.Count == 0 || cross.Count == 0 {
		r.check("added cross-node p99", "≤ 5ms", "no values", false)
		return
	}
	p50, p99 := cross.P50-same.P50, cross.P99-same.P99
	r.Metrics["cross_node_added_p50_ms"] = p50
	r.Metrics["cross_node_added_p99_ms"] = p99
	r.check("added cross-node p99", "≤ 5ms", ms(p99), p99 <= 5)
}

// waitServed waits (bounded) until every subscriber target serves path:
// a stream created on one node is known to the others once the cluster's
// registry reached them.
func (e *env) waitServed(ctx context.Context, transport, path string) error {
	for _, host := range e.subs {
		deadline := time.Now().Add(servedWait)
		for {
			sub, err := e.subscribe(ctx, host, transport, path)
			if err == nil {
				_ = sub.Close()
				break
			}
			if !errors.Is(err, ErrStatus) || time.Now().After(deadline) {
				return fmt.Errorf("%s not served by %s: %w", path, host, err)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// servedWait bounds waitServed per target.
const servedWait = 15 * time.Second

func (e *env) fanoutChecks(subs, streams int, rate float64, published uint64, src string) {
	e.after(func(r *Report) {
		// Each subscriber reads one stream: every stream at rate offers
		// subs × rate deliveries/s, however many streams there are.
		want := float64(subs) * rate
		if published > 0 && r.Elapsed > 0 {
			r.Metrics["published_events"] = float64(published)
			r.Metrics["published_per_second"] = float64(published) / r.Elapsed
			r.Metrics["delivered_ratio"] = float64(r.Ops) * float64(streams) / (float64(published) * float64(subs))
		}
		r.check("deliveries/s", "≥ "+group(0.99*want), group(r.Rate), r.Rate >= 0.99*want)
		r.check("lost events", "0", fmt.Sprint(r.Lost), r.Lost == 0)
		limit := 250.0
		if src == publishHTTP {
			limit = 100 // end to end, from the publish
		}
		r.checkLatency("delivery", "p99 delivery latency", limit)
	})
}
