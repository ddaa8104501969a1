package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// catchUp bounds the wait for subscribers to receive every acknowledged
// publish after the load stopped.
const catchUp = 15 * time.Second

// trackTarget is the publishes/s the tracker must sustain at 64
// connections with history persisted (1.75× Centrifugo's memory-only
// publish on the same machine).
const trackTarget = 50000

// runTrack is the realtimer scenario: GET /track/{user}?data=… at
// concurrency C, with one WebSocket subscriber per user.
func runTrack(ctx context.Context, e *env) error {
	conc := orInt(e.o.Concurrency, 64)
	users := orInt(e.o.Users, conc)
	e.rep.OpsUnit = "publishes"
	e.param("concurrency", conc)
	e.param("users", users)
	e.param("duration", e.o.Duration.String())
	prefix := "bench-" + runID() + "-"
	acked := make([]atomic.Uint64, users)
	var delivered atomic.Int64
	hreq, hdel := e.hist("request"), e.hist("delivery")
	p := e.newPool(ctx, users)
	defer p.close()
	cons := make([]*consumer, users)
	err := e.connectAll(ctx, users, func(_ context.Context, i int) error {
		cons[i] = &consumer{e: e, key: i, h: hdel, ops: &delivered}
		// after=0: a fresh user's stream from its first event, so nothing
		// published before the subscription registered is missed.
		return p.add(e.subHost(i), "ws", "/ws/track/"+prefix+strconv.Itoa(i)+"?after=0", cons[i], 0, e.measuring, nil)
	})
	if err != nil {
		return fmt.Errorf("connect subscribers: %w", err)
	}
	l := &reqLoop{e: e, h: hreq, conc: conc,
		build: func(w int) []byte {
			return e.request("GET", "/track/"+prefix+strconv.Itoa(w%users)+"?data=bench-"+strconv.Itoa(w))
		},
		check: func(w int, status int, body []byte) error {
			if status != http.StatusAccepted {
				return fmt.Errorf("%w: /track: %d %.120s", ErrStatus, status, body)
			}
			seq, ok := uintField(body, keySeq)
			if !ok {
				return fmt.Errorf("%w: /track answer %.120q", ErrProtocol, body)
			}
			a := &acked[w%users]
			for old := a.Load(); seq > old && !a.CompareAndSwap(old, seq); old = a.Load() {
			}
			return nil
		}}
	if err := l.run(ctx); err != nil {
		return err
	}
	caught := waitCaughtUp(ctx, cons, acked)
	var published uint64
	for i := range acked {
		published += acked[i].Load()
	}
	p.close()
	e.metric("published_total", float64(published))
	e.metric("delivered_total", float64(delivered.Load()))
	e.metric("catch_up_seconds", caught.Seconds())
	e.after(func(r *Report) {
		r.check("publishes/s", "≥ 50,000", group(r.Rate), r.Rate >= trackTarget)
		r.checkLatency("request", "p99 publish latency", 10)
		r.check("delivered = published", group(float64(published)), group(float64(delivered.Load())),
			uint64(delivered.Load()) == published)
		r.check("lost events", "0", fmt.Sprint(r.Lost), r.Lost == 0)
	})
	return nil
}

// waitCaughtUp waits (bounded) until each user's subscriber saw the
// highest acknowledged seq, and returns how long that took.
func waitCaughtUp(ctx context.Context, cons []*consumer, acked []atomic.Uint64) time.Duration {
	start := time.Now()
	for time.Since(start) < catchUp && ctx.Err() == nil {
		done := true
		for i, c := range cons {
			if c.lastSeq.Load() < acked[i].Load() {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
