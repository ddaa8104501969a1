package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// qConsumer claims and deletes on one node until stop, recording what it
// was delivered and which deletes were acknowledged.
type qConsumer struct {
	mu        sync.Mutex
	delivered map[string]int
	deleted   map[string]bool
	attempted map[string]bool
	redeliv   []string // ids delivered again after an acknowledged delete
}

func (q *qConsumer) run(t *testing.T, node *clusterNode, stop <-chan struct{}) {
	for range 100000 {
		select {
		case <-stop:
			return
		default:
		}
		var c qMessages
		code, err := qdo(t, "POST", node.URL("/v2/queues/shared/claims?limit=10"), `{"ttl":2,"grace":60}`, &c)
		if err != nil {
			return // the node died
		}
		switch code {
		case http.StatusCreated:
		case http.StatusNoContent:
			time.Sleep(20 * time.Millisecond)
			continue
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			// The log elects a new leader after a node died (503, or
			// 504 when a read barrier outlasts the election): a
			// consumer retries, as the producer does.
			time.Sleep(200 * time.Millisecond)
			continue
		default:
			t.Errorf("claim on %s: %d", node.URL(""), code)
			return
		}
		for _, m := range c.Messages {
			q.mu.Lock()
			if q.deleted[m.ID] {
				q.redeliv = append(q.redeliv, m.ID)
			}
			q.delivered[m.ID]++
			q.attempted[m.ID] = true
			q.mu.Unlock()
			code, err := qdo(t, "DELETE", node.URL("/v2/queues/shared/messages/"+m.ID+"?claim_id="+c.ClaimID), "", nil)
			if err != nil {
				return
			}
			if code == 204 {
				q.mu.Lock()
				q.deleted[m.ID] = true
				q.mu.Unlock()
			}
		}
	}
}

// A producer on node 1 and consumers on nodes 2 and 3 share one queue:
// every message is delivered, none again after its acknowledged delete,
// across a kill -9 of a consumer's node (its claims expire and node 2
// takes the messages over).
func TestClusterQueueAcrossNodes(t *testing.T) {
	c := startEmbeddedCluster(t, 3, "--queue-min-claim-ttl", "1s")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	cons := &qConsumer{delivered: map[string]int{}, deleted: map[string]bool{}, attempted: map[string]bool{}}
	stop2, stop3 := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { cons.run(t, n2, stop2) })
	wg.Go(func() { cons.run(t, n3, stop3) })
	defer func() { close(stop2); wg.Wait() }()

	posted := map[string]bool{}
	for i := range 200 {
		var out struct {
			IDs []string `json:"message_ids"`
		}
		body := fmt.Sprintf(`{"messages":[{"ttl":600,"body":{"i":%d}},{"ttl":600,"body":{"i":%d}}]}`, i, i)
		// A 503 (with Retry-After) is the answer while the log elects a
		// new leader after a node died: a producer retries it.
		code, err := qdo(t, "POST", n1.URL("/v2/queues/shared/messages"), body, &out)
		for try := 0; err == nil && code == http.StatusServiceUnavailable && try < 30; try++ {
			time.Sleep(time.Second)
			code, err = qdo(t, "POST", n1.URL("/v2/queues/shared/messages"), body, &out)
		}
		if err != nil || code != http.StatusCreated {
			t.Fatalf("post %d on node 1: %d %v", i, code, err)
		}
		for _, id := range out.IDs {
			posted[id] = true
		}
		if i == 100 {
			n3.sc.Kill() // a consumer's node dies holding claims
			close(stop3)
		}
	}
	eventually(t, "every message consumed", 90*time.Second, func() bool {
		cons.mu.Lock()
		defer cons.mu.Unlock()
		for id := range posted {
			if !cons.deleted[id] && !cons.attempted[id] {
				return false
			}
		}
		var st struct {
			Messages struct{ Total int } `json:"messages"`
		}
		code, err := qdo(t, "GET", n1.URL("/v2/queues/shared/stats"), "", &st)
		return err == nil && code == 200 && st.Messages.Total == 0
	})
	cons.mu.Lock()
	defer cons.mu.Unlock()
	if len(cons.redeliv) > 0 {
		t.Fatalf("delivered again after an acknowledged delete: %v", cons.redeliv)
	}
	for id := range posted {
		if cons.delivered[id] == 0 {
			t.Fatalf("message %s never delivered", id)
		}
	}
	t.Logf("posted %d, deleted %d", len(posted), len(cons.deleted))
}
