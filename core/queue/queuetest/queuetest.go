// Package queuetest is the contract every queue.Driver must pass: Zaqar
// semantics for queues, messages and claims, tenant isolation, expiry
// and exclusive claims under concurrency. A driver's test calls Run with
// a constructor of fresh, empty drivers.
package queuetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/queue"
)

// T0 is the suite's clock origin; every call passes an explicit instant.
var T0 = time.Unix(1_700_000_000, 0)

// Client ids of the suite.
const (
	ClientA = "3381af92-2b9e-11e3-b191-71861300734c"
	ClientB = "7bd0e5a2-9b43-4a4e-9c2d-6c9c3bb5e0f1"
)

// Run runs the contract against drivers from open.
func Run(t *testing.T, open func(t *testing.T) queue.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d queue.Driver)
	}{
		{"QueueLifecycle", testQueueLifecycle},
		{"ListQueuesPaging", testListQueuesPaging},
		{"TenantIsolation", testTenantIsolation},
		{"PostAndList", testPostAndList},
		{"EchoAndIncludeClaimed", testEchoAndIncludeClaimed},
		{"GetAndDelete", testGetAndDelete},
		{"ClaimedNeedsClaimID", testClaimedNeedsClaimID},
		{"ClaimLifecycle", testClaimLifecycle},
		{"ClaimExpiry", testClaimExpiry},
		{"Grace", testGrace},
		{"MessageTTL", testMessageTTL},
		{"Pop", testPop},
		{"Stats", testStats},
		{"ConcurrentClaimsExclusive", testConcurrentClaims},
		{"ClaimPastManyClaimedAtHead", testClaimPastClaimedHead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func at(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }

func post(t *testing.T, d queue.Driver, k queue.Key, client string, now time.Time, ttl time.Duration, bodies ...string) []string {
	t.Helper()
	msgs := make([]queue.NewMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = queue.NewMessage{Body: json.RawMessage(b), TTL: ttl}
	}
	ids, err := d.PostMessages(ctx(t), k, client, msgs, now)
	if err != nil {
		t.Fatalf("post %v: %v", bodies, err)
	}
	if len(ids) != len(bodies) {
		t.Fatalf("post returned %d ids for %d messages", len(ids), len(bodies))
	}
	return ids
}

func list(t *testing.T, d queue.Driver, k queue.Key, o queue.ListOptions, now time.Time) queue.Page {
	t.Helper()
	if o.Limit == 0 {
		o.Limit = 100
	}
	p, err := d.ListMessages(ctx(t), k, o, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bodies(ms []queue.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Body)
	}
	return out
}

func ids(ms []queue.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func wantBodies(t *testing.T, what string, got []queue.Message, want ...string) {
	t.Helper()
	if g := bodies(got); !slices.Equal(g, want) {
		t.Fatalf("%s: bodies %v, want %v", what, g, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func testQueueLifecycle(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t1", Queue: "jobs"}
	if _, err := d.QueueMetadata(ctx(t), k); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Fatalf("metadata of missing queue: %v", err)
	}
	wantErr(t, "set metadata of missing queue", d.SetQueueMetadata(ctx(t), k, json.RawMessage(`{}`)), queue.ErrQueueNotFound)
	created, err := d.CreateQueue(ctx(t), k, json.RawMessage(`{"a":1}`), at(0))
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	created, err = d.CreateQueue(ctx(t), k, json.RawMessage(`{"a":2}`), at(1))
	if err != nil || created {
		t.Fatalf("create again: created=%v err=%v", created, err)
	}
	meta, err := d.QueueMetadata(ctx(t), k)
	if err != nil || string(meta) != `{"a":1}` {
		t.Fatalf("metadata %s %v, want the first one", meta, err)
	}
	if err := d.SetQueueMetadata(ctx(t), k, json.RawMessage(`{"b":true}`)); err != nil {
		t.Fatal(err)
	}
	if meta, _ = d.QueueMetadata(ctx(t), k); string(meta) != `{"b":true}` {
		t.Fatalf("metadata after set: %s", meta)
	}
	post(t, d, k, ClientA, at(2), time.Hour, `1`)
	if err := d.DeleteQueue(ctx(t), k); err != nil {
		t.Fatal(err)
	}
	if _, err := d.QueueMetadata(ctx(t), k); !errors.Is(err, queue.ErrQueueNotFound) {
		t.Fatalf("metadata after delete: %v", err)
	}
	if p := list(t, d, k, queue.ListOptions{Echo: true, IncludeClaimed: true}, at(3)); len(p.Messages) != 0 {
		t.Fatalf("messages survived their queue: %v", bodies(p.Messages))
	}
	if err := d.DeleteQueue(ctx(t), k); err != nil {
		t.Fatalf("deleting a missing queue: %v", err)
	}
	// Posting creates the queue lazily.
	post(t, d, k, ClientA, at(4), time.Hour, `2`)
	if meta, err = d.QueueMetadata(ctx(t), k); err != nil || string(meta) != `{}` {
		t.Fatalf("lazily created queue metadata %s %v", meta, err)
	}
}

func testListQueuesPaging(t *testing.T, d queue.Driver) {
	names := []string{"a", "b-1", "b_2", "c", "zz"}
	for _, n := range slices.Backward(names) {
		if _, err := d.CreateQueue(ctx(t), queue.Key{Tenant: "t1", Queue: n}, json.RawMessage(`{}`), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	marker := ""
	for range 10 {
		page, err := d.ListQueues(ctx(t), "t1", marker, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d for limit 2", len(page))
		}
		for _, q := range page {
			got = append(got, q.Name)
		}
		marker = page[len(page)-1].Name
	}
	if !slices.Equal(got, names) {
		t.Fatalf("paged queues %v, want %v", got, names)
	}
}

func testTenantIsolation(t *testing.T, d queue.Driver) {
	a := queue.Key{Tenant: "tenant-a", Queue: "shared"}
	b := queue.Key{Tenant: "tenant-b", Queue: "shared"}
	// A tenant that is a prefix of another must not see its queues.
	a2 := queue.Key{Tenant: "tenant-a2", Queue: "other"}
	idsA := post(t, d, a, ClientA, at(0), time.Hour, `"secret"`)
	post(t, d, a2, ClientA, at(0), time.Hour, `"x"`)
	qs, err := d.ListQueues(ctx(t), "tenant-b", "", 20)
	if err != nil || len(qs) != 0 {
		t.Fatalf("tenant-b sees queues %v (%v)", qs, err)
	}
	qs, _ = d.ListQueues(ctx(t), "tenant-a", "", 20)
	if len(qs) != 1 || qs[0].Name != "shared" {
		t.Fatalf("tenant-a lists %v", qs)
	}
	if p := list(t, d, b, queue.ListOptions{Echo: true, IncludeClaimed: true}, at(1)); len(p.Messages) != 0 {
		t.Fatalf("tenant-b lists tenant-a's messages: %v", bodies(p.Messages))
	}
	if ms, _ := d.GetMessages(ctx(t), b, idsA, at(1)); len(ms) != 0 {
		t.Fatalf("tenant-b gets tenant-a's messages by id: %v", bodies(ms))
	}
	if st, _ := d.QueueStats(ctx(t), b, at(1)); st.Total != 0 {
		t.Fatalf("tenant-b counts %d messages", st.Total)
	}
	if c, _ := d.CreateClaim(ctx(t), b, queue.ClaimOptions{TTL: time.Minute, Limit: 10}, at(1)); len(c.Messages) != 0 {
		t.Fatalf("tenant-b claimed tenant-a's messages")
	}
	if _, err := d.PopMessages(ctx(t), b, 10, at(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteMessages(ctx(t), b, idsA, nil, at(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteQueue(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, "tenant-a after tenant-b's attempts", list(t, d, a, queue.ListOptions{Echo: true}, at(2)).Messages, `"secret"`)
}

func testPostAndList(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	var all []string
	for i := range 5 {
		got := post(t, d, k, ClientA, at(i), time.Hour, fmt.Sprint(3*i), fmt.Sprint(3*i+1), fmt.Sprint(3*i+2))
		all = append(all, got...)
	}
	if !slices.IsSorted(all) {
		t.Fatalf("ids do not sort in post order: %v", all)
	}
	if len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatalf("duplicate ids: %v", all)
	}
	var seen []string
	marker := ""
	for range 20 {
		p := list(t, d, k, queue.ListOptions{Marker: marker, Limit: 4, Echo: true}, at(10))
		if len(p.Messages) == 0 {
			break
		}
		seen = append(seen, ids(p.Messages)...)
		marker = p.Marker
	}
	if !slices.Equal(seen, all) {
		t.Fatalf("paged ids %v, want %v", seen, all)
	}
	p := list(t, d, k, queue.ListOptions{Limit: 2, Echo: true}, at(10))
	m := p.Messages[0]
	if string(m.Body) != "0" || m.TTL != time.Hour || !m.Created.Equal(at(0)) || m.ClientID != ClientA || m.Claimed() {
		t.Fatalf("first message %+v", m)
	}
}

func testEchoAndIncludeClaimed(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	post(t, d, k, ClientA, at(0), time.Hour, `"a1"`, `"a2"`)
	post(t, d, k, ClientB, at(0), time.Hour, `"b1"`)
	wantBodies(t, "A without echo", list(t, d, k, queue.ListOptions{ClientID: ClientA}, at(1)).Messages, `"b1"`)
	wantBodies(t, "A with echo", list(t, d, k, queue.ListOptions{ClientID: ClientA, Echo: true}, at(1)).Messages, `"a1"`, `"a2"`, `"b1"`)
	c, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(2))
	if err != nil || len(c.Messages) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	wantBodies(t, "unclaimed only", list(t, d, k, queue.ListOptions{Echo: true}, at(3)).Messages, `"a2"`, `"b1"`)
	got := list(t, d, k, queue.ListOptions{Echo: true, IncludeClaimed: true}, at(3)).Messages
	wantBodies(t, "include claimed", got, `"a1"`, `"a2"`, `"b1"`)
	if got[0].ClaimID != c.ID {
		t.Fatalf("listed claimed message has claim %q, want %q", got[0].ClaimID, c.ID)
	}
}

func testGetAndDelete(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	id := post(t, d, k, ClientA, at(0), time.Hour, `1`, `2`, `3`)
	ms, err := d.GetMessages(ctx(t), k, []string{id[2], "nope", id[0], "ffffffffffffffff"}, at(1))
	if err != nil {
		t.Fatal(err)
	}
	wantBodies(t, "get by ids", ms, `3`, `1`)
	if err := d.DeleteMessages(ctx(t), k, []string{id[0], id[2], "garbage"}, nil, at(2)); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, "after delete", list(t, d, k, queue.ListOptions{Echo: true}, at(3)).Messages, `2`)
	if err := d.DeleteMessages(ctx(t), k, []string{id[0]}, nil, at(3)); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

func testClaimedNeedsClaimID(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	id := post(t, d, k, ClientA, at(0), time.Hour, `1`, `2`, `3`)
	c1, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(1))
	if err != nil || len(c1.Messages) != 1 || c1.Messages[0].ID != id[0] {
		t.Fatalf("claim 1: %+v %v", c1, err)
	}
	c2, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(1))
	if err != nil || len(c2.Messages) != 1 || c2.Messages[0].ID != id[1] {
		t.Fatalf("claim 2: %+v %v", c2, err)
	}
	wantErr(t, "delete claimed without claim", d.DeleteMessages(ctx(t), k, []string{id[0]}, nil, at(2)), queue.ErrClaimed)
	wantErr(t, "delete with another claim", d.DeleteMessages(ctx(t), k, []string{id[0]}, []string{c2.ID}, at(2)), queue.ErrNotClaimedBy)
	wantErr(t, "delete unclaimed with a claim", d.DeleteMessages(ctx(t), k, []string{id[2]}, []string{c1.ID}, at(2)), queue.ErrNotClaimedBy)
	// A batch with one bad message deletes nothing.
	wantErr(t, "mixed batch", d.DeleteMessages(ctx(t), k, []string{id[2], id[0]}, nil, at(2)), queue.ErrClaimed)
	wantBodies(t, "after rejected deletes", list(t, d, k, queue.ListOptions{Echo: true, IncludeClaimed: true}, at(2)).Messages, `1`, `2`, `3`)
	if err := d.DeleteMessages(ctx(t), k, []string{id[0], id[1]}, []string{c1.ID, c2.ID}, at(3)); err != nil {
		t.Fatalf("delete with both claims: %v", err)
	}
	wantBodies(t, "after claimed deletes", list(t, d, k, queue.ListOptions{Echo: true, IncludeClaimed: true}, at(3)).Messages, `3`)
}

func testClaimLifecycle(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	if c, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 5}, at(0)); err != nil || c.ID != "" || len(c.Messages) != 0 {
		t.Fatalf("claim on a missing queue: %+v %v", c, err)
	}
	post(t, d, k, ClientA, at(0), time.Hour, `1`, `2`, `3`)
	c, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Grace: 0, Limit: 2}, at(10))
	if err != nil || c.ID == "" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	wantBodies(t, "claimed", c.Messages, `1`, `2`)
	if c.TTL != time.Minute || !c.Expires.Equal(at(70)) || c.Messages[0].ClaimID != c.ID {
		t.Fatalf("claim fields: %+v", c)
	}
	c2, _ := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 5}, at(11))
	wantBodies(t, "second claim", c2.Messages, `3`)
	if c3, _ := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 5}, at(12)); c3.ID != "" {
		t.Fatalf("third claim got %v", bodies(c3.Messages))
	}
	got, err := d.GetClaim(ctx(t), k, c.ID, at(20))
	if err != nil {
		t.Fatal(err)
	}
	wantBodies(t, "get claim", got.Messages, `1`, `2`)
	if err := d.RenewClaim(ctx(t), k, c.ID, 2*time.Minute, 0, at(60)); err != nil {
		t.Fatal(err)
	}
	if got, err = d.GetClaim(ctx(t), k, c.ID, at(150)); err != nil || !got.Expires.Equal(at(180)) || len(got.Messages) != 2 {
		t.Fatalf("renewed claim at 150s: %+v %v", got, err)
	}
	if err := d.ReleaseClaim(ctx(t), k, c.ID, at(151)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetClaim(ctx(t), k, c.ID, at(151)); !errors.Is(err, queue.ErrClaimNotFound) {
		t.Fatalf("released claim: %v", err)
	}
	wantBodies(t, "free after release", list(t, d, k, queue.ListOptions{Echo: true}, at(152)).Messages, `1`, `2`, `3`)
	if err := d.ReleaseClaim(ctx(t), k, c.ID, at(153)); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	wantErr(t, "renew released", d.RenewClaim(ctx(t), k, c.ID, time.Minute, 0, at(153)), queue.ErrClaimNotFound)
	if _, err := d.GetClaim(ctx(t), k, "not-a-claim", at(153)); !errors.Is(err, queue.ErrClaimNotFound) {
		t.Fatalf("malformed claim id: %v", err)
	}
}

func testClaimExpiry(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	id := post(t, d, k, ClientA, at(0), time.Hour, `1`)
	c, _ := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(0))
	if _, err := d.GetClaim(ctx(t), k, c.ID, at(59)); err != nil {
		t.Fatalf("claim before expiry: %v", err)
	}
	if _, err := d.GetClaim(ctx(t), k, c.ID, at(60)); !errors.Is(err, queue.ErrClaimNotFound) {
		t.Fatalf("claim at expiry: %v", err)
	}
	// The message comes back and its old claim can no longer delete it.
	wantBodies(t, "after claim expiry", list(t, d, k, queue.ListOptions{Echo: true}, at(60)).Messages, `1`)
	wantErr(t, "delete with expired claim", d.DeleteMessages(ctx(t), k, id, []string{c.ID}, at(61)), queue.ErrNotClaimedBy)
	c2, _ := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(61))
	if len(c2.Messages) != 1 || c2.ID == c.ID {
		t.Fatalf("reclaim: %+v", c2)
	}
	wantErr(t, "delete with the first claim", d.DeleteMessages(ctx(t), k, id, []string{c.ID}, at(62)), queue.ErrNotClaimedBy)
	if n, err := d.Expire(ctx(t), at(62)); err != nil || n < 1 {
		t.Fatalf("expire removed %d (%v), want the expired claim", n, err)
	}
	if err := d.DeleteMessages(ctx(t), k, id, []string{c2.ID}, at(63)); err != nil {
		t.Fatal(err)
	}
}

func testGrace(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	post(t, d, k, ClientA, at(0), time.Minute, `1`)
	c, _ := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: 100 * time.Second, Grace: 30 * time.Second, Limit: 1}, at(10))
	// The message would expire at 60s; the claim keeps it to 110s + 30s.
	if got, err := d.GetClaim(ctx(t), k, c.ID, at(100)); err != nil || len(got.Messages) != 1 {
		t.Fatalf("claimed message at 100s: %+v %v", got, err)
	}
	wantBodies(t, "in grace", list(t, d, k, queue.ListOptions{Echo: true}, at(139)).Messages, `1`)
	wantBodies(t, "after grace", list(t, d, k, queue.ListOptions{Echo: true}, at(140)).Messages)
}

func testMessageTTL(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	id := post(t, d, k, ClientA, at(0), time.Minute, `"short"`)
	post(t, d, k, ClientA, at(0), time.Hour, `"long"`)
	wantBodies(t, "before ttl", list(t, d, k, queue.ListOptions{Echo: true}, at(59)).Messages, `"short"`, `"long"`)
	wantBodies(t, "at ttl", list(t, d, k, queue.ListOptions{Echo: true}, at(60)).Messages, `"long"`)
	if ms, _ := d.GetMessages(ctx(t), k, id, at(60)); len(ms) != 0 {
		t.Fatal("expired message returned by id")
	}
	if c, _ := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 5}, at(61)); !slices.Equal(bodies(c.Messages), []string{`"long"`}) {
		t.Fatalf("claim after ttl: %v", bodies(c.Messages))
	}
	n, err := d.Expire(ctx(t), at(61))
	if err != nil || n != 1 {
		t.Fatalf("expire removed %d (%v), want 1", n, err)
	}
	if n, _ := d.Expire(ctx(t), at(62)); n != 0 {
		t.Fatalf("second expire removed %d", n)
	}
}

func testPop(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	post(t, d, k, ClientA, at(0), time.Hour, `1`, `2`, `3`, `4`)
	if _, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(1)); err != nil {
		t.Fatal(err)
	}
	got, err := d.PopMessages(ctx(t), k, 2, at(2))
	if err != nil {
		t.Fatal(err)
	}
	wantBodies(t, "popped", got, `2`, `3`)
	wantBodies(t, "left", list(t, d, k, queue.ListOptions{Echo: true, IncludeClaimed: true}, at(3)).Messages, `1`, `4`)
}

func testStats(t *testing.T, d queue.Driver) {
	k := queue.Key{Tenant: "t", Queue: "q"}
	if st, err := d.QueueStats(ctx(t), k, at(0)); err != nil || st.Total != 0 || st.Oldest != nil {
		t.Fatalf("stats of missing queue: %+v %v", st, err)
	}
	id := post(t, d, k, ClientA, at(0), time.Hour, `1`, `2`)
	id3 := post(t, d, k, ClientA, at(5), time.Hour, `3`)
	if _, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Minute, Limit: 1}, at(6)); err != nil {
		t.Fatal(err)
	}
	st, err := d.QueueStats(ctx(t), k, at(7))
	if err != nil {
		t.Fatal(err)
	}
	if st.Free != 2 || st.Claimed != 1 || st.Total != 3 {
		t.Fatalf("stats %+v, want 2 free 1 claimed", st)
	}
	if st.Oldest.ID != id[0] || !st.Oldest.Created.Equal(at(0)) || st.Newest.ID != id3[0] || !st.Newest.Created.Equal(at(5)) {
		t.Fatalf("oldest %+v newest %+v", st.Oldest, st.Newest)
	}
	if st, _ = d.QueueStats(ctx(t), k, at(66)); st.Free != 3 || st.Claimed != 0 {
		t.Fatalf("stats after the claim expired: %+v", st)
	}
}

// testConcurrentClaims: competing consumers claim and delete every
// message exactly once while a producer keeps posting.
func testConcurrentClaims(t *testing.T, d queue.Driver) {
	const total, consumers = 400, 4
	k := queue.Key{Tenant: "t", Queue: "q"}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		errs    = make(chan error, consumers+1)
	)
	wg.Go(func() {
		for i := range total / 10 {
			b := make([]queue.NewMessage, 10)
			for j := range b {
				b[j] = queue.NewMessage{Body: json.RawMessage(fmt.Sprint(i*10 + j)), TTL: time.Hour}
			}
			if _, err := d.PostMessages(ctx(t), k, ClientA, b, at(0)); err != nil {
				errs <- err
				return
			}
		}
	})
	// Consumers run until everything was claimed, bounded in time and
	// count; an empty claim (the producer is behind, which a loaded
	// machine makes common) backs off instead of using up the bound.
	// A bound, not a speed target: a three-server JetStream cluster under
	// -race on two shared cores once needed more than 20 s for the 400.
	deadline := time.Now().Add(60 * time.Second)
	for range consumers {
		wg.Go(func() {
			for range 100 * total {
				mu.Lock()
				n := len(claimed)
				mu.Unlock()
				if n == total || time.Now().After(deadline) {
					return
				}
				c, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Hour, Limit: 7}, at(1))
				if err != nil {
					errs <- err
					return
				}
				if len(c.Messages) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				for _, m := range c.Messages {
					claimed[string(m.Body)]++
				}
				mu.Unlock()
				if err := d.DeleteMessages(ctx(t), k, ids(c.Messages), []string{c.ID}, at(2)); c.ID != "" && err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != total {
		t.Fatalf("claimed %d distinct messages, want %d", len(claimed), total)
	}
	for b, n := range claimed {
		if n != 1 {
			t.Fatalf("message %s claimed %d times", b, n)
		}
	}
	if st, _ := d.QueueStats(ctx(t), k, at(3)); st.Total != 0 {
		t.Fatalf("%d messages left after every claim was deleted", st.Total)
	}
}

// testClaimPastClaimedHead: a free message behind more claimed ones than
// any scan bound (the bbolt driver once stopped after 16384) is claimed.
func testClaimPastClaimedHead(t *testing.T, d queue.Driver) {
	const held, batch = 17000, 1000
	k := queue.Key{Tenant: "t", Queue: "q"}
	for i := 0; i < held; i += batch {
		b := make([]queue.NewMessage, batch)
		for j := range b {
			b[j] = queue.NewMessage{Body: json.RawMessage(fmt.Sprint(i + j)), TTL: time.Hour}
		}
		if _, err := d.PostMessages(ctx(t), k, ClientA, b, at(0)); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for range 2 * held / batch {
		c, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Hour, Limit: batch}, at(1))
		if err != nil {
			t.Fatal(err)
		}
		if got += len(c.Messages); got >= held {
			break
		}
	}
	if got != held {
		t.Fatalf("claimed %d of %d", got, held)
	}
	tail := post(t, d, k, ClientA, at(2), time.Hour, `"tail"`)
	c, err := d.CreateClaim(ctx(t), k, queue.ClaimOptions{TTL: time.Hour, Limit: 10}, at(3))
	if err != nil || len(c.Messages) != 1 || c.Messages[0].ID != tail[0] {
		t.Fatalf("claim behind %d claimed messages: %v %v", held, bodies(c.Messages), err)
	}
}
