package bench

import (
	"context"
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

// pool is the subscribers of a run: each reads on its own goroutine
// until the pool's context ends.
type pool struct {
	e      *env
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	cons   []*consumer
}

func (e *env) newPool(ctx context.Context) *pool {
	p := &pool{e: e}
	p.ctx, p.cancel = context.WithCancel(ctx)
	return p
}

// add opens a subscriber on path and starts its reader, which stops after
// limit events (0: never) and then calls done (may be nil).
func (p *pool) add(transport, path string, c *consumer, limit int64, measure func() bool, done func(err error)) error {
	sub, err := p.e.subscribe(p.ctx, transport, path)
	if err != nil {
		p.e.fail(err)
		return err
	}
	p.e.conns.Add(1)
	p.mu.Lock()
	p.cons = append(p.cons, c)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.e.conns.Add(-1)
		defer sub.Close()
		err := c.run(p.ctx, sub, limit, measure)
		if err != nil {
			p.e.fail(err)
		}
		if done != nil {
			done(err)
		}
	}()
	return nil
}

// close stops every reader and waits for them.
func (p *pool) close() {
	p.cancel()
	p.wg.Wait()
}

// runFanout: N subscribers of one magic emitter at R events/s.
func runFanout(ctx context.Context, e *env) error {
	subs, rate := orInt(e.o.Subscribers, 1000), orFloat(e.o.Rate, 1000)
	tr, err := e.transport("sse", false)
	if err != nil {
		return err
	}
	e.rep.OpsUnit = "deliveries"
	e.param("subscribers", subs)
	e.param("rate", rate)
	e.param("transport", tr)
	e.param("duration", e.o.Duration.String())
	id, err := e.createEmitter(ctx, "magic", map[string]any{"rate": rate})
	if err != nil {
		return err
	}
	defer e.deleteEmitter(id)
	path := "/api/v1/streams/" + id + "/" + tr
	h := e.hist("delivery")
	p := e.newPool(ctx)
	defer p.close()
	t0 := time.Now()
	err = e.connectAll(ctx, subs, func(_ context.Context, i int) error {
		return p.add(tr, path, &consumer{e: e, key: i, h: h, ops: &e.ops}, 0, e.measuring, nil)
	})
	if err != nil {
		return fmt.Errorf("connect subscribers: %w", err)
	}
	e.metric("connect_seconds", time.Since(t0).Seconds())
	if err := sleep(ctx, e.o.Warmup); err != nil {
		return err
	}
	probe := p.cons[0]
	seq0 := probe.lastSeq.Load()
	e.openWindow()
	if err := sleep(ctx, e.o.Duration); err != nil {
		return err
	}
	e.closeWindow()
	published := probe.lastSeq.Load() - seq0
	p.close()
	e.fanoutChecks(subs, rate, published)
	return nil
}

func (e *env) fanoutChecks(subs int, rate float64, published uint64) {
	e.after(func(r *Report) {
		want := float64(subs) * rate
		if published > 0 && r.Elapsed > 0 {
			r.Metrics["published_events"] = float64(published)
			r.Metrics["published_per_second"] = float64(published) / r.Elapsed
			r.Metrics["delivered_ratio"] = float64(r.Ops) / (float64(published) * float64(subs))
		}
		r.check("deliveries/s", "≥ "+group(0.99*want), group(r.Rate), r.Rate >= 0.99*want)
		r.check("lost events", "0", fmt.Sprint(r.Lost), r.Lost == 0)
		r.checkLatency("delivery", "p99 delivery latency", 250)
	})
}
