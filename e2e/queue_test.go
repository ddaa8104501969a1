package e2e

// Queue tests on the real binary. They need the queue API mounted by the
// server (queueapi.Register in sidecar/internal/app), the `queue` command
// in root.go, and for the expiry test the serve flags
// --queue-min-message-ttl and --queue-min-claim-ttl.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

const (
	qClient  = "3381af92-2b9e-11e3-b191-71861300734c"
	qProject = "e2e"
)

// qdo sends a queue API request with the tenant and client headers.
func qdo(t *testing.T, method, url, body string, out any) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Project-Id", qProject)
	req.Header.Set("Client-ID", qClient)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && len(raw) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %q: %w", method, url, raw, err)
		}
	}
	return resp.StatusCode, nil
}

type qMessages struct {
	Messages []api.QueueMessage `json:"messages"`
	ClaimID  string             `json:"claim_id"`
}

// allIDs lists every live message of q (claimed too) by paging.
func allIDs(t *testing.T, sc *sidecar, q string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	marker := ""
	for range 10000 {
		var page qMessages
		code, err := qdo(t, "GET", sc.URL("/v2/queues/"+q+"/messages?echo=true&include_claimed=true&limit=100&marker="+marker), "", &page)
		if err != nil || code != 200 {
			t.Fatalf("list: %d %v", code, err)
		}
		if len(page.Messages) == 0 {
			return ids
		}
		for _, m := range page.Messages {
			ids[m.ID] = true
		}
		marker = page.Messages[len(page.Messages)-1].ID
	}
	t.Fatal("listing did not end")
	return nil
}

// TestQueueKillMidStream: posts and claimed deletes run over REST while
// the sidecar is killed with SIGKILL; after a restart every acknowledged
// post that was not acknowledged deleted is there, and no acknowledged
// delete comes back.
func TestQueueKillMidStream(t *testing.T) {
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	var (
		mu      sync.Mutex
		posted  = map[string]bool{}
		deleted = map[string]bool{}
		// attempted holds deletes sent whose answer may not have come: the
		// kill can land after such a delete committed but before it was
		// acknowledged, so the message may or may not still be there.
		attempted = map[string]bool{}
		wg        sync.WaitGroup
	)
	stop := make(chan struct{})
	for p := range 2 {
		wg.Go(func() {
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var out struct {
					IDs []string `json:"message_ids"`
				}
				body := fmt.Sprintf(`{"messages":[{"body":{"p":%d,"i":%d}},{"body":{"p":%d,"i":%d}}]}`, p, i, p, i)
				code, err := qdo(t, "POST", sc.URL("/v2/queues/crash/messages"), body, &out)
				if err != nil || code != 201 {
					return // the sidecar died: this post is not acknowledged
				}
				mu.Lock()
				for _, id := range out.IDs {
					posted[id] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var c qMessages
			code, err := qdo(t, "POST", sc.URL("/v2/queues/crash/claims?limit=5"), `{"ttl":300}`, &c)
			if err != nil || (code != 201 && code != 204) {
				return
			}
			for _, m := range c.Messages {
				mu.Lock()
				attempted[m.ID] = true
				mu.Unlock()
				code, err := qdo(t, "DELETE", sc.URL("/v2/queues/crash/messages/"+m.ID+"?claim_id="+c.ClaimID), "", nil)
				if err != nil || code != 204 {
					return
				}
				mu.Lock()
				deleted[m.ID] = true
				mu.Unlock()
			}
		}
	})
	eventually(t, "some posts and deletes acknowledged", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) > 200 && len(deleted) > 20
	})
	sc.Kill()
	close(stop)
	wg.Wait()
	sc = startSidecar(t, dir)
	live := allIDs(t, sc, "crash")
	for id := range posted {
		if !attempted[id] && !live[id] {
			t.Fatalf("acknowledged post %s lost after kill -9 (%d posted, %d deleted)", id, len(posted), len(deleted))
		}
	}
	for id := range deleted {
		if live[id] {
			t.Fatalf("acknowledged delete of %s undone by kill -9", id)
		}
	}
	// No deleted message is ever delivered again.
	for range 100 {
		var c qMessages
		code, err := qdo(t, "POST", sc.URL("/v2/queues/crash/claims?limit=100"), `{"ttl":300}`, &c)
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

// TestQueueCLITwoProducersTwoConsumers: two `sidestream queue produce`
// and two `sidestream queue consume --print` processes over WebSockets;
// every message is delivered and deleted once, and the queue ends empty.
func TestQueueCLITwoProducersTwoConsumers(t *testing.T) {
	sc := startSidecar(t, t.TempDir())
	const perProducer = 500
	base := []string{"queue", "--server", "http://" + sc.addr, "--queue", "cli", "--project", qProject}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var consumers []*exec.Cmd
	var readers sync.WaitGroup
	for range 2 {
		cmd := exec.CommandContext(ctx, binary, append(base, "consume", "--ids", "--batch", "20", "--claim-ttl", "300s")...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, cmd)
		readers.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				seen[strings.TrimSpace(sc.Text())]++
				mu.Unlock()
			}
		})
	}
	var producers sync.WaitGroup
	for range 2 {
		producers.Go(func() {
			out, err := exec.CommandContext(ctx, binary, append(base, "produce", "--count", fmt.Sprint(perProducer), "--batch", "25")...).CombinedOutput()
			if err != nil {
				t.Errorf("produce: %v: %s", err, out)
			}
		})
	}
	producers.Wait()
	eventually(t, "every message consumed and the queue empty", 60*time.Second, func() bool {
		var st struct {
			Messages struct{ Total int } `json:"messages"`
		}
		code, err := qdo(t, "GET", sc.URL("/v2/queues/cli/stats"), "", &st)
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		return err == nil && code == 200 && st.Messages.Total == 0 && n == 2*perProducer
	})
	for _, c := range consumers {
		_ = c.Process.Signal(syscall.SIGINT)
	}
	for _, c := range consumers {
		_ = c.Wait()
	}
	readers.Wait()
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s delivered %d times", id, n)
		}
	}
}

// TestQueueExpiry: on the real binary, a claim that expires gives its
// messages back, and a message disappears when its ttl ends.
func TestQueueExpiry(t *testing.T) {
	sc := startSidecar(t, t.TempDir(), "--queue-min-message-ttl", "1s", "--queue-min-claim-ttl", "1s")
	var out struct {
		IDs []string `json:"message_ids"`
	}
	code, err := qdo(t, "POST", sc.URL("/v2/queues/exp/messages"), `{"messages":[{"ttl":2,"body":"short"},{"ttl":600,"body":"long"}]}`, &out)
	if err != nil || code != 201 {
		t.Fatalf("post: %d %v", code, err)
	}
	var c qMessages
	if code, err := qdo(t, "POST", sc.URL("/v2/queues/exp/claims?limit=5"), `{"ttl":1,"grace":0}`, &c); err != nil || code != 201 || len(c.Messages) != 2 {
		t.Fatalf("claim: %d %v %+v", code, err, c)
	}
	// The claim ends after 1s (the long message is free again), the short
	// message's ttl after 2s.
	eventually(t, "the claim and the short message expired", 20*time.Second, func() bool {
		var page qMessages
		code, err := qdo(t, "GET", sc.URL("/v2/queues/exp/messages?echo=true"), "", &page)
		return err == nil && code == 200 && len(page.Messages) == 1 && page.Messages[0].ID == out.IDs[1]
	})
	var c2 qMessages
	if code, err := qdo(t, "POST", sc.URL("/v2/queues/exp/claims?limit=5"), `{"ttl":60}`, &c2); err != nil || code != 201 ||
		len(c2.Messages) != 1 || c2.Messages[0].ID != out.IDs[1] || c2.ClaimID == c.ClaimID {
		t.Fatalf("claim after expiry: %d %v %+v", code, err, c2)
	}
	if code, _ := qdo(t, "DELETE", sc.URL("/v2/queues/exp/messages/"+out.IDs[1]+"?claim_id="+c.ClaimID), "", nil); code != 403 {
		t.Fatalf("delete with the expired claim: %d", code)
	}
	ids := allIDs(t, sc, "exp")
	if ids[out.IDs[0]] || !ids[out.IDs[1]] {
		t.Fatalf("live after ttl: %v (short %s should be gone)", ids, out.IDs[0])
	}
}
