package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// idleSettle lets the server's allocations settle before reading RSS.
const idleSettle = 2 * time.Second

// runIdle holds N idle SSE and/or WS connections on a quiet tracker
// stream and reports the server's RSS per connection.
func runIdle(ctx context.Context, e *env) error {
	n := orInt(e.o.Conns, 10000)
	tr, err := e.transport("sse", true)
	if err != nil {
		return err
	}
	e.rep.OpsUnit = "connections"
	e.param("conns", n)
	e.param("transport", tr)
	e.param("hold", e.o.Duration.String())
	if e.pid <= 0 {
		e.note("no server process: RSS per connection cannot be measured")
	}
	user := "bench-idle-" + runID()
	paths := map[string]string{"sse": "/sse/track/" + user, "ws": "/ws/track/" + user}
	kind := func(i int) string {
		if tr == "both" {
			return []string{"sse", "ws"}[i%2]
		}
		return tr
	}
	p := e.newPool(ctx, n)
	defer p.close()
	// One connection per transport first, so the stream and the first-use
	// state exist before the baseline.
	for _, k := range []string{"sse", "ws"} {
		if tr == k || tr == "both" {
			if err := p.add(e.host, k, paths[k], &consumer{e: e, ops: new(atomic.Int64)}, 0, nil, nil); err != nil {
				return err
			}
		}
	}
	if err := sleep(ctx, idleSettle); err != nil {
		return err
	}
	base := e.procNow()
	t0 := time.Now()
	_ = e.connectAll(ctx, n, func(_ context.Context, i int) error {
		k := kind(i)
		err := p.add(e.host, k, paths[k], &consumer{e: e, ops: new(atomic.Int64)}, 0, nil, nil)
		if err == nil {
			e.ops.Add(1)
		}
		return err
	})
	connected := e.ops.Load()
	e.metric("connect_seconds", time.Since(t0).Seconds())
	e.metric("connected", float64(connected))
	if err := sleep(ctx, idleSettle); err != nil {
		return err
	}
	settled := e.procNow()
	e.openWindow()
	if err := sleep(ctx, e.o.Duration); err != nil {
		return err
	}
	e.closeWindow()
	held := e.conns.Load() - int64(e.extra(tr))
	end := e.procNow()
	e.rep.Ops = connected
	if connected > 0 && base.RSS > 0 {
		per := float64(settled.RSS-base.RSS) / float64(connected)
		e.metric("rss_base_bytes", float64(base.RSS))
		e.metric("rss_per_conn_bytes", per)
		e.metric("rss_per_conn_bytes_end", float64(end.RSS-base.RSS)/float64(connected))
		e.after(func(r *Report) {
			r.check("rss per connection", "≤ 12 KiB", iec(int64(per)), per <= 12*1024)
		})
	}
	e.metric("held", float64(held))
	e.after(func(r *Report) {
		r.Rate = 0 // connections held, not a throughput
		r.check("connections open", group(float64(n)), group(float64(connected)), connected == int64(n))
		r.check("connections held", group(float64(connected)), group(float64(held)), held == connected)
	})
	return nil
}

// extra is the number of warm-up connections runIdle opened.
func (e *env) extra(tr string) int {
	if tr == "both" {
		return 2
	}
	return 1
}

// runID names the streams of one run apart from earlier runs'.
func runID() string {
	return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff)
}
