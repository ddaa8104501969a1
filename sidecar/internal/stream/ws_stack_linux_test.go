//go:build linux && !race

// The race detector doubles the stack guard: this measures the real
// build only.

package streamhttp

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/stream"
)

// An idle stream socket's one goroutine (Run, parked in NextUntil) keeps
// the 2 KiB stack it started with, as an SSE writer does: StartWS did the
// deep work on the caller's stack. Served by ServeWS on a new goroutine
// instead, each grew to 4 KiB (4,259 bytes on average). Not parallel: it
// reads the process's stack total.
func TestWSIdleSessionStackStaysSmall(t *testing.T) {
	hub := newHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := hub.Open(ctx, "ws-stack", stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t)
	const n = 1000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peers, ended := serveIdle(t, ctx, st, n, WSOptions{Heartbeat: time.Hour}, w, nil)
	if got := waitGoroutines("stream.(*Subscription).NextUntil(", func(c int) bool { return c >= n }); got < n {
		t.Fatalf("%d of %d writers parked", got, n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.StackInuse - before.StackInuse) / n
	t.Logf("stack per idle session: %d bytes", per)
	// Some grow under lock contention while they all start at once.
	if per > 3<<10 {
		t.Fatalf("stack per idle session %d bytes, want <= 3 KiB", per)
	}
	cancel()
	for range peers {
		<-ended
	}
}
