package queueclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// TestConsumeWindowAboveAcksInFlight: a consumer whose window lets the
// server push far more than it acknowledges at once still gets every
// message. The client's reader used to block handing the 65th push to
// Deliveries while the consumer waited for an ack reply that only that
// reader could read, so the run stalled.
func TestConsumeWindowAboveAcksInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	const total = 400
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg := Target{URL: e.base, Queue: "deep", Project: "p1", ClientID: clientA}
	if _, err := Produce(ctx, ProduceOptions{Target: tg, Count: total, Batch: 50, InFlight: 2}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	res, err := Consume(ctx, ConsumeOptions{Target: tg, Count: total, Batch: 1, ClaimTTL: 300 * time.Second,
		Window: total, Ack: true, InFlight: 1}, func(d api.QueueDelivery) {
		for _, m := range d.Messages {
			seen[m.ID]++
		}
	})
	if err != nil {
		t.Fatalf("consume: %v after %d messages", err, res.Messages)
	}
	if res.Messages != total || len(seen) != total {
		t.Fatalf("acknowledged %d, saw %d distinct of %d", res.Messages, len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s delivered %d times", id, n)
		}
	}
	// Acks that went out together (one delete, many claims) were
	// acknowledged durable: nothing is left.
	c, err := tg.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Do(ctx, "queue_get_stats", nil, map[string]any{"queue_name": "deep"})
	if err != nil || !strings.Contains(string(r.Body), `"total":0`) {
		t.Fatalf("after every ack: %s (%v)", r.Body, err)
	}
}

func TestPendingAcksTakeWholeDeliveries(t *testing.T) {
	t.Parallel()
	d := func(claim string, ids ...string) api.QueueDelivery {
		ms := make([]api.QueueMessage, len(ids))
		for i, id := range ids {
			ms[i].ID = id
		}
		return api.QueueDelivery{QueueName: "q", ClaimID: claim, Messages: ms}
	}
	var p pendingAcks
	p.add(d("c1", "a", "b"))
	p.add(d("c2", "c", "d", "e"))
	p.add(d("c3")) // an empty delivery adds nothing
	p.add(d("c4", "f", "g", "h", "i", "j", "k"))
	tests := []struct {
		max            int
		ids, claims    string
		leftIDs, leftC int
	}{
		{max: 4, ids: "a b", claims: "c1", leftIDs: 9, leftC: 2},         // c2 would make 5
		{max: 5, ids: "c d e", claims: "c2", leftIDs: 6, leftC: 1},       // c4 would make 9
		{max: 2, ids: "f g h i j k", claims: "c4", leftIDs: 0, leftC: 0}, // one delivery over the cap still goes, whole
	}
	for _, tt := range tests {
		got := p.take(tt.max)
		if ids, cl := strings.Join(got.ids, " "), strings.Join(got.claims, " "); ids != tt.ids || cl != tt.claims || got.queue != "q" {
			t.Fatalf("take(%d) = %q with %q on %q, want %q with %q", tt.max, ids, cl, got.queue, tt.ids, tt.claims)
		}
		if len(p.ids) != tt.leftIDs || len(p.claims) != tt.leftC || len(p.sizes) != tt.leftC {
			t.Fatalf("after take(%d): %d ids, %d claims, %d sizes left", tt.max, len(p.ids), len(p.claims), len(p.sizes))
		}
	}
	p.add(d("c5", "x"))
	p.add(d("c6", "y"))
	if got := p.take(DefaultAckMax); strings.Join(got.claims, " ") != "c5 c6" || strings.Join(got.ids, " ") != "x y" {
		t.Fatalf("after emptying: %+v", got)
	}
}

// Produce posts every message durably with the body asked for, a queue
// name that needs escaping gets the server's answer about names, and a
// consumer subscribed first receives them all, counting its acks.
func TestProduceSubscribeRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg := Target{URL: e.base, Queue: "pr", Project: "p1", ClientID: clientA}
	bad := tg
	bad.Queue = `bad"name`
	if _, err := Produce(ctx, ProduceOptions{Target: bad, Count: 1}); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("bad queue name: %v", err)
	}
	k, err := Subscribe(ctx, ConsumeOptions{Target: tg, Count: 30, Batch: 7, Ack: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	res, err := Produce(ctx, ProduceOptions{Target: tg, Count: 30, Batch: 10, InFlight: 3, TTL: 90 * time.Second, Body: json.RawMessage(`{"k":"v"}`)})
	if err != nil || res.Messages != 30 {
		t.Fatalf("produce: %d, %v", res.Messages, err)
	}
	var bodies []string
	got, err := k.Run(ctx, func(d api.QueueDelivery) {
		for _, m := range d.Messages {
			bodies = append(bodies, string(m.Body))
			if m.TTL != 90 || m.ClaimID != d.ClaimID {
				t.Errorf("message %+v of claim %s", m, d.ClaimID)
			}
		}
	})
	if err != nil || got.Messages != 30 || k.Acked() != 30 || len(bodies) != 30 {
		t.Fatalf("run: %d acked (%d), %d delivered, %v", got.Messages, k.Acked(), len(bodies), err)
	}
	for _, b := range bodies {
		if b != `{"k":"v"}` {
			t.Fatalf("body %s", b)
		}
	}
}

// A consumer bounded by Count hands out exactly Count messages, deletes
// them, and gives the rest of its claims back: with or without acks,
// nothing stays claimed for the claim ttl after Run.
func TestConsumeCountGivesTheRestBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg := Target{URL: e.base, Queue: "rest", Project: "p1", ClientID: clientA}
	if _, err := Produce(ctx, ProduceOptions{Target: tg, Count: 8, Batch: 8}); err != nil {
		t.Fatal(err)
	}
	stats := func() string {
		c, err := tg.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r, err := c.Do(ctx, "queue_get_stats", nil, map[string]any{"queue_name": "rest"})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Body)
	}
	for _, tc := range []struct {
		ack         bool
		count, left int
	}{{true, 3, 5}, {false, 2, 5}, {true, 5, 0}} {
		seen := 0
		res, err := Consume(ctx, ConsumeOptions{Target: tg, Count: tc.count, Batch: 10, ClaimTTL: 300 * time.Second, Ack: tc.ack},
			func(d api.QueueDelivery) { seen += len(d.Messages) })
		if err != nil || seen != tc.count || res.Messages != int64(tc.count) {
			t.Fatalf("ack=%v count %d: handed %d, result %d, %v", tc.ack, tc.count, seen, res.Messages, err)
		}
		if st := stats(); !strings.Contains(st, `"claimed":0`) || !strings.Contains(st, fmt.Sprintf(`"total":%d`, tc.left)) {
			t.Fatalf("ack=%v count %d: stats %s, want %d left, none claimed", tc.ack, tc.count, st, tc.left)
		}
	}
}
