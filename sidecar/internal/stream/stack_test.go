//go:build !race

// The race detector doubles the stack guard, so every goroutine grows
// beyond its first 2 KiB there: this measures the real build only.

package streamhttp

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/stream"
)

// parkedIn counts the goroutines whose stack contains fn.
func parkedIn(fn string) int {
	buf := make([]byte, 64<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fn)
}

// An idle SSE subscriber's goroutine (Start on the caller's goroutine, Run
// on a new one behind one small wrapper frame, as httpapi does) keeps the
// 2 KiB stack it started with: once grown to 4 KiB, Go never halves it
// while it waits, and 2 KiB per subscriber is a sixth of the idle budget.
// Not parallel: it reads the process's stack total.
func TestSSEStreamIdleStackStaysSmall(t *testing.T) {
	hub := newHub(t)
	st, err := hub.Open(context.Background(), "stack", stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ended := make(chan error, n)
	for i := 0; i < n; i++ {
		s := &SSEStream{W: &discardFlusher{}, Sub: st.Subscribe(stream.FromNow()), Opts: SSEOptions{Heartbeat: time.Hour}}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := s.Run(ctx)
			s.Sub.Close()
			ended <- err
		}()
	}
	for i := 0; i < 1000 && parkedIn("stream.(*Subscription).NextUntil(") < n; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if got := parkedIn("stream.(*Subscription).NextUntil("); got < n {
		t.Fatalf("%d of %d writers parked in NextUntil", got, n)
	}
	runtime.ReadMemStats(&after)
	// Some grow under lock contention while they all start at once; 3 KiB
	// on average means most did not (they all grew before: 4 KiB each).
	per := (after.StackInuse - before.StackInuse) / n
	t.Logf("stack per idle writer: %d bytes", per)
	if per > 3<<10 {
		t.Fatalf("stack per idle writer %d bytes, want <= 3 KiB", per)
	}
	cancel()
	for i := 0; i < n; i++ {
		if err := <-ended; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	}
}
