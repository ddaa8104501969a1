package streamhttp

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
)

// A filtered subscriber that always has events to read (here a backlog
// of 100,000 kept events, read 1,024 at a time) but whose events all
// miss still gets its heartbeat meanwhile: NextUntil, which always has
// events, never sees the timer, so the writer looks at it itself.
// Control markers pass; only the backlog's last event matches.
func TestSSEFilterMissingEverythingStillBeats(t *testing.T) {
	t.Parallel()
	cache, err := filter.NewCache(0)
	if err != nil {
		t.Fatal(err)
	}
	const backlog = 100_000
	last, err := cache.Get(`seq == 100000`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := newHub(t).Open(ctx, "chatty", stream.Config{Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	for range backlog / 1000 {
		if _, err := st.Publish(ctx, drafts(1000), nil); err != nil {
			t.Fatal(err)
		}
	}
	w := &countingWriter{wrote: make(chan struct{}, 1)}
	sub := st.Subscribe(stream.After(0))
	var wg sync.WaitGroup
	wg.Go(func() {
		defer sub.Close()
		_ = ServeSSE(ctx, w, sub, SSEOptions{Heartbeat: time.Microsecond, Filter: last})
	})
	var out string
	for range 100_000 { // bounded wait for the matching event
		if out, _, _ = w.snapshot(); strings.Contains(out, "id:100000\n") {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	at := strings.Index(out, "id:100000\n")
	if at < 0 {
		t.Fatalf("the matching event never came: %.300q", out)
	}
	if !strings.Contains(out[:at], ": hb") {
		t.Fatalf("no heartbeat while reading 100,000 events that miss the filter: %.300q", out)
	}
	if strings.Count(out, "id:") != 1 {
		t.Fatalf("events that miss the filter were written: %.300q", out)
	}
}
