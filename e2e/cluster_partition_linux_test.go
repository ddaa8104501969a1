package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A real partition, not a kill: three nodes in network namespaces of
// their own, node 3 cut off from the other two (both ways) while the test
// still reaches all three. The majority keeps serving (writes need the
// JetStream quorum, which two of three hold); node 3 stays up, tells its
// watchers the owner is unreachable and refuses writes cleanly; once the
// network heals it catches up by itself: its watcher gets every event
// published meanwhile once, in order, and the tracker event written on
// the majority side.
func TestClusterPartitionMajorityServesMinorityCatchesUp(t *testing.T) {
	lab := newNetLab(t, 3)
	client := lab.Client()
	url := func(i int, path string) string { return fmt.Sprintf("http://%s:9000%s", lab.Addr(i), path) }
	var routes []string
	for i := 1; i <= 3; i++ {
		routes = append(routes, fmt.Sprintf("nats-route://%s:6222", lab.Addr(i)))
	}
	nodes := make([]*sidecar, 3)
	for i := 1; i <= 3; i++ {
		nodes[i-1] = launchVia(t, lab.Wrap(i), t.TempDir(),
			"--listen", lab.Addr(i)+":9000", "--insecure", "--advertise", url(i, ""),
			"--cluster-name", "part", "--node-name", fmt.Sprintf("n%d", i),
			"--cluster-listen", lab.Addr(i)+":6222", "--cluster-routes", strings.Join(routes, ","))
	}
	for i, sc := range nodes {
		if msg := waitServing(sc, 90*time.Second); msg != "" {
			t.Fatalf("n%d: %s", i+1, msg)
		}
	}
	upOn := func(i int) map[string]string {
		var view struct {
			Nodes []struct{ Name, Health string }
		}
		a := sendWith(t, client, http.MethodGet, url(i, "/api/v1/cluster"), "", nil)
		health := map[string]string{}
		if a.status == http.StatusOK && json.Unmarshal(a.body, &view) == nil {
			for _, n := range view.Nodes {
				health[n.Name] = n.Health
			}
		}
		return health
	}
	eventually(t, "all three nodes up on node 3", 60*time.Second, func() bool {
		h := upOn(3)
		return h["n1"] == "up" && h["n2"] == "up" && h["n3"] == "up"
	})

	a := sendWith(t, client, http.MethodPost, url(1, "/api/v1/emitters"), `{"kind":"log","node":"n1","config":{"source":"synthetic","rate":20}}`, nil)
	if a.status != http.StatusCreated {
		t.Fatalf("create on n1: %d %s", a.status, a.body)
	}
	var created struct{ ID string }
	a.decode(t, &created)
	watch := openSSEWith(t, client, url(3, "/sse/log/"+created.ID), "")
	seqs := readSSE(t, watch, 5)

	lab.Isolate(3)

	// The majority notices and keeps accepting durable writes.
	eventually(t, "node 1 sees node 3 down", 30*time.Second, func() bool { return upOn(1)["n3"] == "down" })
	var published struct{ Seq uint64 }
	eventually(t, "a tracker publish on node 1 during the partition", 30*time.Second, func() bool {
		a := sendWith(t, client, http.MethodPost, url(1, "/track/partition"), `{"side":"majority"}`, nil)
		if a.status != http.StatusAccepted {
			t.Logf("publish on node 1: %d %s", a.status, a.body)
			return false
		}
		a.decode(t, &published)
		return true
	})

	// The minority stays up and says what is going on.
	seqs, offline := readUntilOffline(t, watch, seqs)
	if !offline {
		t.Fatal("node 3's watcher got no offline event while cut off from the owner")
	}
	if a := sendWith(t, client, http.MethodGet, url(3, "/healthz"), "", nil); a.status != http.StatusOK {
		t.Fatalf("node 3 /healthz while partitioned: %d %s", a.status, a.body)
	}
	if a := sendWith(t, client, http.MethodPost, url(3, "/track/partition"), `{"side":"minority"}`, nil); a.status < 400 || a.status >= 500 && a.status != http.StatusServiceUnavailable || a.errorCode() == "" {
		t.Fatalf("a write on the minority side: %d %s, want a JSON error (503 when the quorum is out of reach)", a.status, a.body)
	}

	lab.Heal(3)

	// Node 3 catches up by itself.
	eventually(t, "node 3 sees all three nodes up again", 60*time.Second, func() bool {
		h := upOn(3)
		return h["n1"] == "up" && h["n2"] == "up"
	})
	seqs = append(seqs, readSSE(t, watch, 40)...)
	checkContiguous(t, "node 3's watcher across the partition", seqs)
	eventually(t, "node 3 serves the tracker event written during the partition", 30*time.Second, func() bool {
		var page struct {
			Events []struct {
				Seq  uint64
				Data struct{ Side string }
			} `json:"events"`
		}
		a := sendWith(t, client, http.MethodGet, url(3, fmt.Sprintf("/api/v1/streams/track:partition/events?after=%d", published.Seq-1)), "", nil)
		return a.status == http.StatusOK && json.Unmarshal(a.body, &page) == nil && len(page.Events) > 0 &&
			page.Events[0].Seq == published.Seq && page.Events[0].Data.Side == "majority"
	})
	for i, sc := range nodes {
		if sc.cmd.ProcessState != nil {
			t.Fatalf("n%d exited during the test: %s", i+1, sc.Logs())
		}
	}
}
