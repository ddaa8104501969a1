package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// runSSEUsers is the Gatling scenario: U users open /sse/log/{id} of one
// synthetic log emitter and each reads E events.
func runSSEUsers(ctx context.Context, e *env) error {
	users, events, rate := orInt(e.o.Users, 1000), orInt(e.o.Events, 1000), orFloat(e.o.Rate, 1000)
	e.rep.OpsUnit = "deliveries"
	e.param("users", users)
	e.param("events", events)
	e.param("rate", rate)
	id, err := e.api.CreateLog(ctx, api.LogRequest{Source: "synthetic", Rate: &rate})
	if err != nil {
		return err
	}
	defer e.deleteEmitter(id)
	path := "/sse/log/" + id
	if err := e.waitServed(ctx, "sse", path); err != nil {
		return err
	}
	// Each user needs events/rate seconds of stream once connected.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Duration(float64(events)/rate*float64(time.Second))+2*time.Minute)
	defer cancel()

	h, hu := e.hist("delivery"), e.hist("user")
	var (
		mu                  sync.Mutex
		lastConn, lastDone  time.Time
		completed, failures int
		wg                  sync.WaitGroup
	)
	p := e.newPool(ctx, users)
	defer p.close()
	e.openWindow()
	start := time.Now()
	err = e.connectAll(ctx, users, func(_ context.Context, i int) error {
		connected := time.Now()
		wg.Add(1)
		err := p.add(e.subHost(i), "sse", path, &consumer{e: e, key: i, h: h, ops: &e.ops}, int64(events), nil, func(err error) {
			defer wg.Done()
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				return
			}
			completed++
			lastDone = now
			hu.record(i, now.Sub(connected).Microseconds())
		})
		if err != nil {
			wg.Done()
			return err
		}
		mu.Lock()
		lastConn = time.Now()
		mu.Unlock()
		return nil
	})
	wg.Wait()
	e.closeWindow()
	if err != nil {
		return fmt.Errorf("connect users: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	tail := lastDone.Sub(lastConn).Seconds()
	e.metric("connect_seconds", lastConn.Sub(start).Seconds())
	e.metric("done_after_last_connect_seconds", tail)
	e.metric("users_completed", float64(completed))
	e.after(func(r *Report) {
		r.check("users completed", fmt.Sprint(users), fmt.Sprint(completed), completed == users)
		r.check("done after last connect", "≤ 3s", fmt.Sprintf("%.2fs", tail), completed == users && tail <= 3)
		r.check("lost events", "0", fmt.Sprint(r.Lost), r.Lost == 0)
	})
	if failures > 0 {
		return fmt.Errorf("%d of %d users failed", failures, users)
	}
	return nil
}
