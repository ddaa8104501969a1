package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxRequests bounds a request loop when MaxOps is not given.
const maxRequests = 100_000_000

// reqLoop is C workers, each on its own keep-alive connection, issuing
// requests back to back: a warm-up, the measured window, then stop.
type reqLoop struct {
	e     *env
	h     *latencies
	conc  int
	build func(w int) []byte
	// check validates one answer of worker w.
	check func(w int, status int, body []byte) error
	// windowOps counts the requests that started and ended in the
	// window: the run's Ops, exact at its edges (the ops counter is
	// flushed in batches that straddle them).
	windowOps atomic.Int64
}

// run runs the loop and returns when every worker stopped.
func (l *reqLoop) run(ctx context.Context) error {
	e := l.e
	conns := make([]*httpConn, l.conc)
	err := e.connectAll(ctx, l.conc, func(ctx context.Context, i int) error {
		c, err := e.openHTTP(ctx)
		conns[i] = c
		return err
	})
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	limit := e.o.MaxOps
	if limit <= 0 {
		limit = maxRequests
	}
	var (
		stop, issued atomic.Int64
		wg           sync.WaitGroup
	)
	if e.o.Warmup == 0 {
		e.openWindow() // before the first request: every one is measured
	}
	allDone := make(chan struct{})
	for w, c := range conns {
		stopWatch := closeOnDone(ctx, c)
		defer stopWatch()
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(ctx, w, c, &stop, &issued, limit)
		}()
	}
	go func() { wg.Wait(); close(allDone) }()
	wait := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-allDone:
		case <-ctx.Done():
		}
	}
	if e.o.Warmup > 0 {
		wait(e.o.Warmup)
		e.openWindow()
	}
	wait(e.o.Duration)
	e.closeWindow()
	stop.Store(1)
	<-allDone
	e.setOps(l.windowOps.Load())
	return ctx.Err()
}

func (l *reqLoop) worker(ctx context.Context, w int, c *httpConn, stop, issued *atomic.Int64, limit int64) {
	e := l.e
	req := l.build(w)
	lat := make([]int64, 0, 256)
	var pending, inWindow int64
	flush := func() {
		l.h.record(w, lat...)
		lat = lat[:0]
		e.ops.Add(pending)
		l.windowOps.Add(inWindow)
		pending, inWindow = 0, 0
	}
	defer flush()
	for stop.Load() == 0 {
		// Only the window's requests count against limit: a warm-up that
		// used them all would leave the window empty.
		started := e.measuring()
		if started && issued.Add(1) > limit {
			return
		}
		if e.pace(ctx, 1) != nil {
			return
		}
		t0 := time.Now()
		status, body, err := c.do(req)
		if err != nil {
			e.fail(err)
			return
		}
		if err := l.check(w, status, body); err != nil {
			e.fail(err)
			continue
		}
		if e.measuring() {
			lat = append(lat, time.Since(t0).Microseconds())
			if started {
				inWindow++
			}
		}
		pending++
		if pending >= 64 {
			flush()
		}
	}
}
