package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/apiclient"
)

// fanSub is what one subscriber saw: a digest of (seq, type, data) of
// every event, and the first thing that was wrong.
type fanSub struct {
	sum   [sha256.Size]byte
	count int
	err   error
}

// The earlier system's Gatling scenario as a correctness test: 1000
// concurrent SSE subscribers on one log emitter each receive the same
// 1000 events, in seq order, none missing or repeated.
func TestFanout1000SSESubscribers(t *testing.T) {
	t.Parallel()
	const subscribers, events = 1000, 1000
	sc := startSidecar(t, t.TempDir())
	c, err := apiclient.New("http://" + sc.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second) // hang guard
	defer cancel()
	// Slow enough that most events reach the subscribers live rather than
	// from history while the 1000 connections open.
	rate, persist := 250.0, true
	id, err := c.CreateLog(ctx, api.LogRequest{Rate: &rate, Retention: &api.RetentionRequest{Persist: &persist}})
	if err != nil {
		t.Fatalf("create log emitter: %v", err)
	}

	results := make([]fanSub, subscribers)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = subscribe(ctx, c, sc.URL("/sse/log/"+id+"?after=0"), events)
		}()
	}
	wg.Wait()

	ref := results[0]
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("subscriber %d: %v", i, r.err)
		case r.count != events:
			t.Fatalf("subscriber %d got %d events, want %d", i, r.count, events)
		case r.sum != ref.sum:
			t.Fatalf("subscriber %d received other events than subscriber 0", i)
		}
	}
	// The history holds the same events the subscribers saw.
	page, err := c.Events(ctx, id, 0, events)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, e := range page.Events {
		digest(h, e)
	}
	if len(page.Events) != events || [sha256.Size]byte(h.Sum(nil)) != ref.sum {
		t.Fatalf("history page of %d events differs from what the subscribers received", len(page.Events))
	}
	if code := do(t, http.MethodDelete, sc.URL("/api/v1/emitters/"+id), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
}

// subscribe reads n events from an SSE URL over one connection (no
// reconnects: a dropped connection is a failure here).
func subscribe(ctx context.Context, c *apiclient.Client, url string, n int) fanSub {
	var (
		r    fanSub
		h    = sha256.New()
		last uint64
	)
	errDone := errors.New("done")
	o := apiclient.FollowOptions{OnReconnect: func(rc apiclient.Reconnect) {
		if r.err == nil {
			r.err = fmt.Errorf("connection lost after seq %d: %w", last, rc.Err)
		}
	}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := c.FollowURL(sctx, url, o, func(e api.Event) error {
		if r.err != nil {
			cancel()
			return r.err
		}
		if e.Seq != last+1 || e.Type != "log" {
			return fmt.Errorf("after seq %d got seq %d type %s", last, e.Seq, e.Type)
		}
		var d struct{ Line uint64 }
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Line != e.Seq {
			return fmt.Errorf("event %d: data %s: want line %d", e.Seq, e.Data, e.Seq)
		}
		last = e.Seq
		digest(h, e)
		r.count++
		if r.count == n {
			return errDone
		}
		return nil
	})
	if r.err == nil && !errors.Is(err, errDone) {
		r.err = err
	}
	r.sum = [sha256.Size]byte(h.Sum(nil))
	return r
}

func digest(h hash.Hash, e api.Event) {
	fmt.Fprintf(h, "%d\x00%s\x00", e.Seq, e.Type)
	h.Write(e.Data)
	h.Write([]byte{0})
}
