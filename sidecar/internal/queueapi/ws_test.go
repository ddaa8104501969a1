package queueapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
	"github.com/sidestream/sidestream/sidecar/queueclient"
)

func h(project, client string) map[string]string {
	return map[string]string{"X-Project-Id": project, "Client-ID": client}
}

func TestWSOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(nil)
	hh := h("p1", clientA)
	steps := []struct {
		action string
		body   any
		status int
	}{
		{"queue_create", map[string]any{"queue_name": "q", "metadata": map[string]any{"k": 1}}, 201},
		{"queue_create", map[string]any{"queue_name": "q"}, 204},
		{"queue_list", map[string]any{"limit": 5}, 200},
		{"queue_get", map[string]any{"queue_name": "q"}, 200},
		{"queue_update", map[string]any{"queue_name": "q", "metadata": map[string]any{"k": 2}}, 200},
		{"message_post", map[string]any{"queue_name": "q", "messages": []any{map[string]any{"body": "m1", "ttl": 300}, map[string]any{"body": "m2"}}}, 201},
		{"message_list", map[string]any{"queue_name": "q", "echo": true}, 200},
		{"queue_get_stats", map[string]any{"queue_name": "q"}, 200},
		{"claim_create", map[string]any{"queue_name": "q", "limit": 1, "ttl": 60}, 201},
	}
	var last queueclient.Reply
	for _, s := range steps {
		last = wsDo(t, c, s.action, hh, s.body)
		if last.Status != s.status {
			t.Fatalf("%s: %d %s, want %d", s.action, last.Status, last.Body, s.status)
		}
	}
	var claim struct {
		ClaimID  string             `json:"claim_id"`
		Messages []api.QueueMessage `json:"messages"`
	}
	if err := json.Unmarshal(last.Body, &claim); err != nil || len(claim.Messages) != 1 {
		t.Fatalf("claim body %s: %v", last.Body, err)
	}
	mid := claim.Messages[0].ID
	qc := map[string]any{"queue_name": "q", "claim_id": claim.ClaimID}
	more := []struct {
		action string
		body   any
		status int
	}{
		{"claim_get", qc, 200},
		{"claim_update", map[string]any{"queue_name": "q", "claim_id": claim.ClaimID, "ttl": 120}, 204},
		{"message_get", map[string]any{"queue_name": "q", "message_id": mid}, 200},
		{"message_get_many", map[string]any{"queue_name": "q", "message_ids": []string{mid}}, 200},
		{"message_delete", map[string]any{"queue_name": "q", "message_id": mid}, 403},
		{"message_delete", map[string]any{"queue_name": "q", "message_id": mid, "claim_id": claim.ClaimID}, 204},
		{"message_get", map[string]any{"queue_name": "q", "message_id": mid}, 404},
		{"claim_delete", qc, 204},
		{"message_delete_many", map[string]any{"queue_name": "q", "pop": 5}, 200},
		{"queue_delete", map[string]any{"queue_name": "q"}, 204},
		{"queue_get", map[string]any{"queue_name": "q"}, 404},
	}
	for _, s := range more {
		if r := wsDo(t, c, s.action, hh, s.body); r.Status != s.status {
			t.Fatalf("%s: %d %s, want %d", s.action, r.Status, r.Body, s.status)
		}
	}
}

// TestWSBadFrames: every bad frame gets an error reply in the API's
// format, the connection keeps working, and nothing stored changes.
// postRaw is a post frame of one message whose body is the raw text body.
func postRaw(body string) string {
	return `{"action":"message_post","headers":{"Client-ID":"` + clientA + `"},"body":{"queue_name":"q","messages":[{"body":` + body + `}]}}`
}

func TestWSBadFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true, api: Options{MaxBodyBytes: 4096}})
	c := e.dial(http.Header{"X-Project-Id": {"p1"}})
	post := func() queueclient.Reply {
		return wsDo(t, c, "message_post", h("", clientA), map[string]any{"queue_name": "q", "messages": []any{map[string]any{"body": 1}}})
	}
	if r := post(); r.Status != 201 {
		t.Fatalf("first post: %d %s", r.Status, r.Body)
	}
	raw := []struct {
		name    string
		typ     int
		data    string
		status  int
		errCode string
	}{
		{"not json", websocket.TextMessage, `{"action":`, 400, "malformed_frame"},
		{"array", websocket.TextMessage, `[1,2]`, 400, "malformed_frame"},
		{"no action", websocket.TextMessage, `{"body":{}}`, 400, "malformed_frame"},
		{"body not object", websocket.TextMessage, `{"action":"queue_list","body":[1]}`, 400, "malformed_frame"},
		{"header not string", websocket.TextMessage, `{"action":"queue_list","headers":{"X-Project-Id":5}}`, 400, "malformed_frame"},
		{"not UTF-8", websocket.TextMessage, `{"action":"message_post","headers":{"Client-ID":"` + clientA + `"},"body":{"queue_name":"q","messages":[{"body":"` + "\xff\xfe" + `"}]}}`, 400, "invalid_utf8"},
		// Grammar the walkers and sonic's validator leave to encoding/json:
		// escapes and control bytes inside a message body.
		{"bad escape in a body", websocket.TextMessage, postRaw(`"\x"`), 400, "malformed_frame"},
		{"short unicode escape", websocket.TextMessage, postRaw(`"\u12"`), 400, "malformed_frame"},
		{"control byte in a string", websocket.TextMessage, postRaw("\"a\tb\""), 400, "malformed_frame"},
		{"leading zero", websocket.TextMessage, postRaw(`01`), 400, "malformed_frame"},
		{"binary", websocket.BinaryMessage, `{"action":"queue_list"}`, 400, "unsupported_frame"},
		{"oversized", websocket.TextMessage, `{"action":"queue_list","body":{"x":"` + strings.Repeat("y", 5000) + `"}}`, 413, "too_large"},
	}
	for _, tc := range raw {
		if err := c.WriteMessage(tc.typ, []byte(tc.data)); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-c.Others():
			if r.Status != tc.status || replyCode(t, r) != tc.errCode {
				t.Fatalf("%s: %d %s, want %d %s", tc.name, r.Status, r.Body, tc.status, tc.errCode)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no reply", tc.name)
		}
	}
	framed := []struct {
		name    string
		action  string
		hdr     map[string]string
		body    any
		status  int
		errCode string
	}{
		{"unknown action", "queue_explode", nil, nil, 400, "unknown_action"},
		{"missing client id", "message_list", nil, map[string]any{"queue_name": "q"}, 400, "invalid_client_id"},
		{"bad name", "queue_create", nil, map[string]any{"queue_name": "no/slash"}, 400, "invalid"},
		{"ttl out of range", "message_post", h("", clientA), map[string]any{"queue_name": "q", "messages": []any{map[string]any{"body": 1, "ttl": 5}}}, 400, "invalid"},
		{"grace out of range", "claim_create", h("", clientA), map[string]any{"queue_name": "q", "grace": 50000}, 400, "invalid"},
		{"batch too long", "message_post", h("", clientA), map[string]any{"queue_name": "q", "messages": make([]any, 101)}, 400, "invalid"},
		{"wrong body types", "message_list", h("", clientA), map[string]any{"queue_name": "q", "limit": "ten"}, 400, "malformed_json"},
		{"delete claimed needs claim", "message_delete", h("", clientA), map[string]any{"queue_name": "q", "message_id": "zz"}, 204, ""},
	}
	for _, tc := range framed {
		r := wsDo(t, c, tc.action, tc.hdr, tc.body)
		if r.Status != tc.status || (tc.errCode != "" && replyCode(t, r) != tc.errCode) {
			t.Fatalf("%s: %d %s, want %d %s", tc.name, r.Status, r.Body, tc.status, tc.errCode)
		}
		if strings.Contains(string(r.Body), "Go ") || strings.Contains(string(r.Body), "queueapi.") {
			t.Fatalf("%s: the error names Go types: %s", tc.name, r.Body)
		}
	}
	if r := post(); r.Status != 201 {
		t.Fatalf("post after bad frames: %d %s", r.Status, r.Body)
	}
	r := wsDo(t, c, "queue_get_stats", nil, map[string]any{"queue_name": "q"})
	if !strings.Contains(string(r.Body), `"total":2`) {
		t.Fatalf("stats after bad frames: %s", r.Body)
	}
}

// TestWSTenantIsolation: a connection authenticated as tenant A cannot
// reach tenant B, by header or by any action.
func TestWSTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{auth: true, nosync: true})
	b := e.dial(http.Header{"Authorization": {"Bearer " + tokB}})
	if r := wsDo(t, b, "message_post", h("", clientB), map[string]any{"queue_name": "shared", "messages": []any{map[string]any{"body": "b-secret"}}}); r.Status != 201 {
		t.Fatalf("B posts: %d %s", r.Status, r.Body)
	}
	a := e.dial(nil) // authenticates with a frame
	if r := wsDo(t, a, "queue_list", nil, nil); r.Status != 401 || replyCode(t, r) != "unauthenticated" {
		t.Fatalf("unauthenticated frame: %d %s", r.Status, r.Body)
	}
	if r := wsDo(t, a, "authenticate", map[string]string{"X-Auth-Token": "wrong-token-0000000000"}, nil); r.Status != 401 {
		t.Fatalf("bad authenticate: %d %s", r.Status, r.Body)
	}
	if r := wsDo(t, a, "authenticate", map[string]string{"X-Auth-Token": tokA}, nil); r.Status != 200 {
		t.Fatalf("authenticate: %d %s", r.Status, r.Body)
	}
	if r := wsDo(t, a, "message_list", h("tenant-b", clientA), map[string]any{"queue_name": "shared", "echo": true}); r.Status != 403 {
		t.Fatalf("A naming tenant B: %d %s", r.Status, r.Body)
	}
	for _, tc := range []struct {
		action string
		body   map[string]any
		empty  string
	}{
		{"message_list", map[string]any{"queue_name": "shared", "echo": true, "include_claimed": true}, `"messages":[]`},
		{"queue_list", nil, `"queues":[]`},
		{"queue_get_stats", map[string]any{"queue_name": "shared"}, `"total":0`},
		{"message_delete_many", map[string]any{"queue_name": "shared", "pop": 10}, `"messages":[]`},
	} {
		if r := wsDo(t, a, tc.action, h("", clientA), tc.body); r.Status != 200 || !strings.Contains(string(r.Body), tc.empty) {
			t.Fatalf("A %s: %d %s", tc.action, r.Status, r.Body)
		}
	}
	if r := wsDo(t, a, "claim_create", h("", clientA), map[string]any{"queue_name": "shared"}); r.Status != 204 {
		t.Fatalf("A claims: %d %s", r.Status, r.Body)
	}
	r := wsDo(t, b, "message_list", h("", clientB), map[string]any{"queue_name": "shared", "echo": true})
	if !strings.Contains(string(r.Body), `"b-secret"`) {
		t.Fatalf("B's message after A's attempts: %s", r.Body)
	}
}

// consume subscribes c to queue and deletes every delivery with its
// claim, recording bodies until stop is closed.
func consume(t *testing.T, c *queueclient.Client, q string, opts map[string]any, got chan<- string, stop <-chan struct{}) error {
	r := wsDo(t, c, "subscription_create", h("p1", clientB), map[string]any{"queue_name": q, "options": opts})
	if r.Status != 201 {
		return fmt.Errorf("subscribe: %d %s", r.Status, r.Body)
	}
	for {
		select {
		case <-stop:
			return nil
		case d, ok := <-c.Deliveries():
			if !ok {
				return fmt.Errorf("connection closed")
			}
			ids := make([]string, len(d.Messages))
			for i, m := range d.Messages {
				ids[i] = m.ID
				got <- m.ID
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			rep, err := c.Do(ctx, "message_delete_many", h("p1", clientB),
				map[string]any{"queue_name": q, "message_ids": ids, "claim_ids": []string{d.ClaimID}})
			cancel()
			if err != nil {
				return err
			}
			if rep.Status != 204 {
				return fmt.Errorf("delete: %d %s", rep.Status, rep.Body)
			}
		}
	}
}

// TestWSProducersConsumersExactlyOnce: two producers and two subscribed
// consumers; every message is delivered, claimed and deleted once.
func TestWSProducersConsumersExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	const producers, batches, batch = 2, 20, 10
	got := make(chan string, producers*batches*batch*2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		c := e.dial(nil)
		wg.Go(func() {
			if err := consume(t, c, "work", map[string]any{"limit": 7, "claim_ttl": 300, "window": 20}, got, stop); err != nil {
				errs <- err
			}
		})
	}
	posted := make(chan string, producers*batches*batch)
	for p := range producers {
		c := e.dial(nil)
		wg.Go(func() {
			for i := range batches {
				msgs := make([]any, batch)
				for j := range msgs {
					msgs[j] = map[string]any{"body": map[string]int{"p": p, "i": i, "j": j}}
				}
				r := wsDo(t, c, "message_post", h("p1", clientA), map[string]any{"queue_name": "work", "messages": msgs})
				var out struct {
					IDs []string `json:"message_ids"`
				}
				if err := json.Unmarshal(r.Body, &out); r.Status != 201 || err != nil {
					errs <- fmt.Errorf("post: %d %s", r.Status, r.Body)
					return
				}
				for _, id := range out.IDs {
					posted <- id
				}
			}
		})
	}
	seen := map[string]int{}
	deadline := time.After(60 * time.Second)
	for len(seen) < producers*batches*batch {
		select {
		case id := <-got:
			seen[id]++
		case err := <-errs:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(seen), producers*batches*batch)
		}
	}
	// Deletes of the last deliveries may still be in flight: wait for
	// an empty queue, then make sure nothing else arrives.
	probe := e.dial(nil)
	for i := 0; ; i++ {
		r := wsDo(t, probe, "queue_get_stats", h("p1", ""), map[string]any{"queue_name": "work"})
		if strings.Contains(string(r.Body), `"total":0`) {
			break
		}
		if i > 1000 {
			t.Fatalf("queue never emptied: %s", r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(got)
	for id := range got {
		seen[id]++
	}
	close(posted)
	n := 0
	for id := range posted {
		n++
		if seen[id] != 1 {
			t.Fatalf("message %s delivered %d times", id, seen[id])
		}
	}
	if n != len(seen) {
		t.Fatalf("posted %d, delivered %d distinct", n, len(seen))
	}
}

// TestWSClaimExpiryRedelivers: a consumer that never deletes loses its
// messages to another consumer once the claim expires.
func TestWSClaimExpiryRedelivers(t *testing.T) {
	t.Parallel()
	l := queue.DefaultLimits()
	l.MinClaimTTL, l.MinMessageTTL = time.Second, time.Second
	e := newEnv(t, envOpts{nosync: true, limits: l, api: Options{PollInterval: 50 * time.Millisecond}})
	lazy := e.dial(nil)
	if r := wsDo(t, lazy, "subscription_create", h("p1", clientB), map[string]any{"queue_name": "q", "options": map[string]any{"claim_ttl": 1, "grace": 0}}); r.Status != 201 {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
	if r := wsDo(t, lazy, "message_post", h("p1", clientA), map[string]any{"queue_name": "q", "messages": []any{map[string]any{"body": "once"}}}); r.Status != 201 {
		t.Fatal(r.Status)
	}
	var first api.QueueDelivery
	select {
	case d, ok := <-lazy.Deliveries():
		if !ok {
			t.Fatalf("connection closed: %v", lazy.Err())
		}
		first = d
	case <-time.After(20 * time.Second):
		t.Fatal("no first delivery")
	}
	if r := wsDo(t, lazy, "subscription_delete", nil, map[string]any{"subscription_id": first.SubscriptionID}); r.Status != 204 {
		t.Fatalf("unsubscribe: %d", r.Status)
	}
	other := e.dial(nil)
	if r := wsDo(t, other, "subscription_create", h("p1", clientB), map[string]any{"queue_name": "q", "options": map[string]any{"claim_ttl": 60}}); r.Status != 201 {
		t.Fatal(r.Status)
	}
	var second api.QueueDelivery
	select {
	case d, ok := <-other.Deliveries():
		if !ok {
			t.Fatalf("connection closed: %v", other.Err())
		}
		second = d
	case <-time.After(20 * time.Second):
		t.Fatal("the message did not come back after its claim expired")
	}
	if second.Messages[0].ID != first.Messages[0].ID || second.ClaimID == first.ClaimID {
		t.Fatalf("redelivery %+v after %+v", second, first)
	}
	r := wsDo(t, lazy, "message_delete", h("p1", clientB), map[string]any{"queue_name": "q", "message_id": first.Messages[0].ID, "claim_id": first.ClaimID})
	if r.Status != 403 || replyCode(t, r) != "not_claimed_by" {
		t.Fatalf("delete with the expired claim: %d %s", r.Status, r.Body)
	}
}

// TestWSCloseEndsSessions: closing the API closes sockets with 1001.
func TestWSCloseEndsSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(nil)
	wsDo(t, c, "queue_list", h("p1", ""), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.api.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.Do(ctx, "queue_list", h("p1", ""), nil)
	if err == nil {
		t.Fatal("request answered after Close")
	}
	if !strings.Contains(err.Error(), "1001") && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("error after close: %v", err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"action":"queue_list","headers":{"X-Project-Id":"p"},"body":{"limit":1}}`,
		`{"action":"message_post","body":{"queue_name":"q","messages":[{"body":1}]}}`,
		`{"action":""}`, `[]`, `null`, `{"action":"x","body":[1]}`, `{"action":"x","headers":{"a":1}}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if fr.raw != nil {
				t.Fatal("raw set on error")
			}
			_ = errorReply(validJSON(data), err)
			return
		}
		if fr.Action == "" || len(fr.Action) > maxActionLen || !json.Valid(fr.raw) {
			t.Fatalf("accepted bad frame %q", data)
		}
		_ = fr.header("X-Project-Id")
		if out := reply(fr.raw, 200, map[string]any{"ok": true}); !json.Valid(out) {
			t.Fatalf("reply to %q is not JSON: %s", data, out)
		}
	})
}

// TestWSSubscriptionClaimsAhead: a subscription moves a backlog in claims
// of up to a claimer's share of its window (each claim is a durable
// commit), yet never sends a frame of more than its limit; the messages
// of one claim are deleted with that claim whichever frame carried them.
func TestWSSubscriptionClaimsAhead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(nil)
	const backlog, limit, window = 40, 3, 80 // a claimer's share: 80/4 = 20
	msgs := make([]any, backlog)
	for i := range msgs {
		msgs[i] = map[string]any{"body": i}
	}
	if r := wsDo(t, c, "message_post", h("p1", clientA), map[string]any{"queue_name": "ahead", "messages": msgs}); r.Status != 201 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	r := wsDo(t, c, "subscription_create", h("p1", clientB), map[string]any{"queue_name": "ahead", "options": map[string]any{"limit": limit, "window": window, "claim_ttl": 300}})
	if r.Status != 201 {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
	seen, claims, frames := map[string]bool{}, map[string][]string{}, 0
	deadline := time.After(30 * time.Second)
	for len(seen) < backlog {
		select {
		case d, ok := <-c.Deliveries():
			if !ok {
				t.Fatalf("connection closed: %v", c.Err())
			}
			frames++
			if len(d.Messages) == 0 || len(d.Messages) > limit {
				t.Fatalf("a frame of %d messages, limit %d", len(d.Messages), limit)
			}
			for _, m := range d.Messages {
				if seen[m.ID] {
					t.Fatalf("message %s delivered twice", m.ID)
				}
				seen[m.ID] = true
				claims[d.ClaimID] = append(claims[d.ClaimID], m.ID)
			}
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(seen), backlog)
		}
	}
	if len(claims) > backlog/20+2 {
		t.Fatalf("%d claims in %d frames for a backlog of %d: want claims of up to 20", len(claims), frames, backlog)
	}
	for id, ids := range claims {
		rep := wsDo(t, c, "message_delete_many", h("p1", clientB), map[string]any{"queue_name": "ahead", "message_ids": ids, "claim_ids": []string{id}})
		if rep.Status != 204 {
			t.Fatalf("delete with claim %s: %d %s", id, rep.Status, rep.Body)
		}
	}
	if r := wsDo(t, c, "queue_get_stats", h("p1", ""), map[string]any{"queue_name": "ahead"}); !strings.Contains(string(r.Body), `"total":0`) {
		t.Fatalf("after deleting every claim's messages: %s", r.Body)
	}
}

// TestWSUnsubscribeFollowsLastDelivery: the reply to subscription_delete
// comes after the subscription's last delivery, so once a consumer has it
// it knows every message it holds a claim on (to delete or release): here
// the messages delivered before the reply are exactly those claimed.
func TestWSUnsubscribeFollowsLastDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(nil)
	msgs := make([]any, 60)
	for i := range msgs {
		msgs[i] = map[string]any{"body": i}
	}
	if r := wsDo(t, c, "message_post", h("p1", clientA), map[string]any{"queue_name": "last", "messages": msgs}); r.Status != 201 {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	r := wsDo(t, c, "subscription_create", h("p1", clientB), map[string]any{"queue_name": "last", "options": map[string]any{"limit": 2, "window": 40, "claim_ttl": 300}})
	var sub struct {
		SubscriptionID string `json:"subscription_id"`
	}
	if r.Status != 201 || json.Unmarshal(r.Body, &sub) != nil {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
	var delivered int
	select { // claimers are at work
	case d := <-c.Deliveries():
		delivered = len(d.Messages)
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	if r := wsDo(t, c, "subscription_delete", h("p1", clientB), map[string]any{"queue_name": "last", "subscription_id": sub.SubscriptionID}); r.Status != 204 {
		t.Fatalf("unsubscribe: %d %s", r.Status, r.Body)
	}
	c.EndDeliveries()
	for d := range c.Deliveries() {
		delivered += len(d.Messages)
	}
	st := wsDo(t, c, "queue_get_stats", h("p1", clientB), map[string]any{"queue_name": "last"})
	var stats struct {
		Messages struct{ Claimed, Total int } `json:"messages"`
	}
	if err := json.Unmarshal(st.Body, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Messages.Claimed != delivered || stats.Messages.Total != 60 {
		t.Fatalf("%d messages delivered before the reply, %d claimed (of %d)", delivered, stats.Messages.Claimed, stats.Messages.Total)
	}
}

// Write frames beyond a client's rate are answered 429 rate_limited and
// change nothing; reads are not limited, and another connection of the
// same client shares its allowance.
func TestWSWriteRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true, api: Options{Writes: ratelimit.New(0.001, 2)}})
	c := e.dial(http.Header{"X-Project-Id": {"p1"}, "Client-ID": {clientA}})
	post := func(c *queueclient.Client) queueclient.Reply {
		return wsDo(t, c, "message_post", nil, map[string]any{"queue_name": "q", "messages": []any{map[string]any{"body": 1}}})
	}
	for i := range 2 {
		if r := post(c); r.Status != http.StatusCreated {
			t.Fatalf("post %d within the burst: %d %s", i, r.Status, r.Body)
		}
	}
	if r := post(c); r.Status != http.StatusTooManyRequests || replyCode(t, r) != "rate_limited" {
		t.Fatalf("post beyond the burst: %d %s, want 429 rate_limited", r.Status, r.Body)
	}
	other := e.dial(http.Header{"X-Project-Id": {"p1"}, "Client-ID": {clientA}})
	if r := post(other); r.Status != http.StatusTooManyRequests {
		t.Fatalf("post on a second connection of the same client: %d %s, want 429", r.Status, r.Body)
	}
	r := wsDo(t, c, "queue_get_stats", nil, map[string]any{"queue_name": "q"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"total":2`) {
		t.Fatalf("stats (a read) after the refusals: %d %s, want 2 messages", r.Status, r.Body)
	}
}
