//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fibAck is one acknowledged next: its position and value, and the
// highest position acknowledged anywhere before its request was sent.
type fibAck struct {
	pos, before int
	value       string
}

// Ten callers loop on /fib/next, so their nexts share plugin round trips
// and commits, and a round trip runs while the commit before it syncs.
// Every answer is F(its position); a next sent after position p was
// acknowledged gets a later one (answers are released in order, once
// durable); and a kill -9 in the middle loses no acknowledged next: the
// restarted sidecar's current is at least the highest acknowledged, and
// its history holds each position once, in order, with no hole.
func TestFibonacciConcurrentNextsSurviveKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	const callers = 10
	var maxAcked atomic.Int64
	acks := make([][]fibAck, callers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for range 100_000 {
				select {
				case <-stop:
					return
				default:
				}
				before := int(maxAcked.Load())
				status, raw, ok := tryPost(context.Background(), sc.URL("/fib/next"), "")
				var r struct {
					Position int
					Value    string
				}
				if !ok || status != http.StatusOK || json.Unmarshal(raw, &r) != nil {
					return // the sidecar is gone
				}
				acks[c] = append(acks[c], fibAck{pos: r.Position, before: before, value: r.Value})
				for m := maxAcked.Load(); int64(r.Position) > m && !maxAcked.CompareAndSwap(m, int64(r.Position)); m = maxAcked.Load() {
				}
			}
		})
	}
	eventually(t, "300 acknowledged nexts", 120*time.Second, func() bool { return maxAcked.Load() >= 300 })
	sc.Kill()
	close(stop)
	wg.Wait()

	seen := map[int]bool{}
	highest := 0
	for _, list := range acks {
		for _, a := range list {
			if seen[a.pos] {
				t.Fatalf("position %d acknowledged twice", a.pos)
			}
			seen[a.pos] = true
			if a.pos <= a.before {
				t.Fatalf("a next sent after position %d was acknowledged answered %d: out of order", a.before, a.pos)
			}
			if a.value != fib(a.pos) {
				t.Fatalf("position %d answered %.40s…, want F(%d)", a.pos, a.value, a.pos)
			}
			highest = max(highest, a.pos)
		}
	}

	sc = startSidecar(t, dir, "--listen", sc.addr)
	var cur struct {
		Position int
		Value    string
	}
	// Nexts in flight at the kill were not acknowledged, but may be durable.
	if code := do(t, http.MethodGet, sc.URL("/fib/current"), "", &cur); code != http.StatusOK ||
		cur.Position < highest || cur.Position > highest+callers || cur.Value != fib(cur.Position) {
		t.Fatalf("after the kill current = %d %d, want F(n) for n in %d..%d", code, cur.Position, highest, highest+callers)
	}
	after, seq := 0, uint64(0)
	for after < cur.Position {
		var page struct {
			Events []struct {
				Seq  uint64
				Data struct{ Position int }
			}
		}
		if code := do(t, http.MethodGet, sc.URL(fmt.Sprintf("/api/v1/streams/fib/events?after=%d&limit=1000", seq)), "", &page); code != http.StatusOK || len(page.Events) == 0 {
			t.Fatalf("history of fib after %d: %d, %d events; current is %d", after, code, len(page.Events), cur.Position)
		}
		for _, e := range page.Events {
			if e.Data.Position != after+1 {
				t.Fatalf("history after position %d holds position %d (seq %d): a hole or a repeat", after, e.Data.Position, e.Seq)
			}
			after, seq = after+1, e.Seq
		}
	}
}
