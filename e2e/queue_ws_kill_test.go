package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/queueclient"
)

// TestQueueWSKillMidStream is the kill test of the WebSocket path the
// queue benchmark drives: several producer connections post batches of
// 10 with many posts in flight each, and consumers delete whole claims
// with message_delete_many, so acknowledgements come out of commits
// that many connections share. After SIGKILL and a restart, every post
// acknowledged and not since deleted is there, and no acknowledged
// delete comes back, in a listing or in a claim.
func TestQueueWSKillMidStream(t *testing.T) {
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	ws := "ws://" + strings.TrimPrefix(sc.URL("/v2/ws"), "http://")
	hdr := http.Header{"X-Project-Id": {qProject}, "Client-ID": {qClient}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu      sync.Mutex
		posted  = map[string]bool{}
		deleted = map[string]bool{}
		// claimed holds messages whose delete was sent: the kill may land
		// between its commit and its acknowledgement.
		claimed = map[string]bool{}
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	const conns, inFlight, batch = 3, 8, 10
	for range conns {
		pc, err := queueclient.Dial(ctx, ws, hdr)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		cc, err := queueclient.Dial(ctx, ws, hdr)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		for range inFlight {
			wg.Go(func() { wsProduce(ctx, pc, batch, stopped, &mu, posted) })
			wg.Go(func() { wsConsume(ctx, cc, batch, stopped, &mu, claimed, deleted) })
		}
	}
	eventually(t, "posts and deletes acknowledged", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) > 3000 && len(deleted) > 1000
	})
	sc.Kill()
	close(stop)
	wg.Wait()
	sc = startSidecar(t, dir)
	live := allIDs(t, sc, "wscrash")
	mu.Lock()
	defer mu.Unlock()
	for id := range posted {
		if !claimed[id] && !live[id] {
			t.Fatalf("acknowledged post %s lost after kill -9 (%d posted, %d deleted)", id, len(posted), len(deleted))
		}
	}
	for id := range deleted {
		if live[id] {
			t.Fatalf("acknowledged delete of %s undone by kill -9", id)
		}
	}
	for range 1000 {
		var c qMessages
		code, err := qdo(t, "POST", sc.URL("/v2/queues/wscrash/claims?limit=100"), `{"ttl":300}`, &c)
		if err != nil {
			t.Fatal(err)
		}
		if code == 204 {
			break
		}
		for _, m := range c.Messages {
			if deleted[m.ID] {
				t.Fatalf("message %s delivered after its acknowledged delete", m.ID)
			}
		}
	}
	t.Logf("posted %d, deleted %d, live after restart %d", len(posted), len(deleted), len(live))
}

// wsProduce posts batches on c until stopped or c fails, and records
// the ids of every acknowledged post.
func wsProduce(ctx context.Context, c *queueclient.Client, batch int, stopped func() bool, mu *sync.Mutex, posted map[string]bool) {
	msgs := make([]map[string]any, batch)
	for i := range msgs {
		msgs[i] = map[string]any{"body": map[string]int{"i": i}}
	}
	for !stopped() {
		r, err := c.Do(ctx, "message_post", nil, map[string]any{"queue_name": "wscrash", "messages": msgs})
		var out struct {
			IDs []string `json:"message_ids"`
		}
		if err != nil || r.Status != http.StatusCreated || json.Unmarshal(r.Body, &out) != nil {
			return // the sidecar died: this post is not acknowledged
		}
		mu.Lock()
		for _, id := range out.IDs {
			posted[id] = true
		}
		mu.Unlock()
	}
}

// wsConsume claims batches on c and deletes each whole claim with one
// message_delete_many, recording the ids of every acknowledged delete.
func wsConsume(ctx context.Context, c *queueclient.Client, batch int, stopped func() bool, mu *sync.Mutex, claimed, deleted map[string]bool) {
	for !stopped() {
		r, err := c.Do(ctx, "claim_create", nil, map[string]any{"queue_name": "wscrash", "limit": batch, "ttl": 300})
		if err != nil || (r.Status != http.StatusCreated && r.Status != http.StatusNoContent) {
			return
		}
		var cl qMessages
		if r.Status == http.StatusNoContent || json.Unmarshal(r.Body, &cl) != nil || len(cl.Messages) == 0 {
			continue
		}
		ids := make([]string, len(cl.Messages))
		mu.Lock()
		for i, m := range cl.Messages {
			ids[i] = m.ID
			claimed[m.ID] = true
		}
		mu.Unlock()
		r, err = c.Do(ctx, "message_delete_many", nil, map[string]any{"queue_name": "wscrash", "message_ids": ids, "claim_ids": []string{cl.ClaimID}})
		if err != nil || r.Status != http.StatusNoContent {
			return
		}
		mu.Lock()
		for _, id := range ids {
			deleted[id] = true
		}
		mu.Unlock()
	}
}
