package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/sidecar/api"
)

// createOn creates a synthetic log emitter on node (via the API of asked).
func createOn(t *testing.T, asked *clusterNode, node string, rate int) string {
	t.Helper()
	var created struct {
		ID   string `json:"id"`
		Node string `json:"node"`
	}
	body := fmt.Sprintf(`{"kind":"log","node":%q,"config":{"source":"synthetic","rate":%d}}`, node, rate)
	a := send(t, http.MethodPost, asked.URL("/api/v1/emitters"), body, nil)
	if a.status != http.StatusCreated {
		t.Fatalf("create on %s via %s: %d %s", node, asked.name, a.status, a.body)
	}
	a.decode(t, &created)
	if created.Node != node {
		t.Fatalf("created emitter runs on %q, want %q", created.Node, node)
	}
	return created.ID
}

// readSSE reads n data events from an SSE stream, failing on a gap.
func readSSE(t *testing.T, s *sseStream, n int) []uint64 {
	t.Helper()
	// A hang guard: a stream that stops delivering fails the test.
	guard := time.AfterFunc(60*time.Second, s.Close)
	defer guard.Stop()
	seqs := make([]uint64, 0, n)
	for len(seqs) < n {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("SSE after %v: %v", seqs, err)
		}
		if ev.Event == "gap" || ev.Event == "offline" {
			t.Fatalf("unexpected %s event (id %d) after %v", ev.Event, ev.ID, seqs)
		}
		seqs = append(seqs, ev.ID)
	}
	return seqs
}

// readUntilOffline appends the events of s to seqs until an offline event
// (true) or 30 s without one (false).
func readUntilOffline(t *testing.T, s *sseStream, seqs []uint64) ([]uint64, bool) {
	t.Helper()
	// With the owner gone nothing else comes: a stream still silent at the
	// deadline is closed, and that is "no offline event", not an error.
	const within = 30 * time.Second
	deadline := time.Now().Add(within)
	guard := time.AfterFunc(within, s.Close)
	defer guard.Stop()
	for time.Now().Before(deadline) {
		ev, err := s.Next()
		if err != nil && !time.Now().Before(deadline) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended while the owner is unreachable: %v", err)
		}
		switch ev.Event {
		case "offline":
			return seqs, true
		case "gap":
			t.Fatalf("gap event (id %d) after %v", ev.ID, seqs)
		}
		seqs = append(seqs, ev.ID)
	}
	return seqs, false
}

func checkContiguous(t *testing.T, what string, seqs []uint64) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("%s: seq %d follows %d (lost or repeated): %v", what, seqs[i], seqs[i-1], seqs)
		}
	}
}

// An emitter on node 1 is listed everywhere, and its stream is served by
// node 2 over SSE and node 3 over WebSocket with the same seqs; a client
// that leaves node 2 and resumes on node 3 loses and repeats nothing.
func TestClusterServesAnyStreamFromAnyNode(t *testing.T) {
	c := startEmbeddedCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	id := createOn(t, n2, "n1", 100) // created through node 2, runs on node 1
	checkClusterView(t, c, n3)
	a := send(t, http.MethodPost, n1.URL("/api/v1/emitters"), `{"kind":"log","node":"n9"}`, nil)
	if a.status != http.StatusBadRequest || a.errorCode() != "invalid" || !strings.Contains(string(a.body), `"node"`) {
		t.Fatalf("create on an unknown node: %d %s", a.status, a.body)
	}

	var list struct {
		Items []struct{ ID, Node string } `json:"items"`
	}
	eventually(t, "node 3 lists the emitter with its owner", 10*time.Second, func() bool {
		do(t, http.MethodGet, n3.URL("/api/v1/emitters?kind=log"), "", &list)
		return len(list.Items) == 1 && list.Items[0].ID == id && list.Items[0].Node == "n1"
	})

	sse := openSSE(t, n2.URL("/sse/log/"+id), "")
	ws := dialWS(t, n3.URL("/api/v1/streams/"+id+"/ws"))
	viaSSE := readSSE(t, sse, 60)
	checkContiguous(t, "SSE on node 2", viaSSE)
	var viaWS []uint64
	for len(viaWS) == 0 || viaWS[len(viaWS)-1] < viaSSE[len(viaSSE)-1] {
		var env struct {
			Seq  uint64
			Type string
		}
		readEnvelope(t, ws, &env)
		viaWS = append(viaWS, env.Seq)
	}
	checkContiguous(t, "WS on node 3", viaWS)
	// Both ended on the same seq, and the owner's own history agrees.
	var page struct {
		Events []struct{ Seq uint64 } `json:"events"`
	}
	do(t, http.MethodGet, n1.URL(fmt.Sprintf("/api/v1/streams/%s/events?after=%d&limit=5", id, viaSSE[0]-1)), "", &page)
	if len(page.Events) == 0 || page.Events[0].Seq != viaSSE[0] {
		t.Fatalf("owner's history after %d: %+v", viaSSE[0]-1, page.Events)
	}

	// Leave node 2 at last, resume on node 3.
	last := viaSSE[len(viaSSE)-1]
	sse.Close()
	resumed := readSSE(t, openSSE(t, n3.URL("/sse/log/"+id), strconv.FormatUint(last, 10)), 30)
	if resumed[0] != last+1 {
		t.Fatalf("resumed on node 3 at %d, want %d", resumed[0], last+1)
	}
	checkContiguous(t, "resumed on node 3", resumed)

	// A REST history page of a remote stream on node 3.
	do(t, http.MethodGet, n3.URL(fmt.Sprintf("/api/v1/streams/%s/events?after=%d&limit=10", id, last)), "", &page)
	if len(page.Events) != 10 || page.Events[0].Seq != last+1 {
		t.Fatalf("node 3's page after %d: %+v", last, page.Events)
	}
}

// checkClusterView checks what node reports of the cluster: every node up
// with its advertised URL, routes to the others, a JetStream meta leader.
func checkClusterView(t *testing.T, c *testCluster, node *clusterNode) {
	t.Helper()
	c.waitNodesUp(node, len(c.nodes))
	var view api.Cluster
	do(t, http.MethodGet, node.URL("/api/v1/cluster"), "", &view)
	if view.Mode != api.ModeEmbedded || view.Node != node.name || view.Replicas != 3 || len(view.Nodes) != len(c.nodes) {
		t.Fatalf("cluster view of %s: %+v", node.name, view)
	}
	for i, n := range view.Nodes {
		if n.Name != c.nodes[i].name || n.Advertise != c.nodes[i].URL("") || n.Self != (n.Name == node.name) {
			t.Fatalf("node %d in the view: %+v", i, n)
		}
	}
	if view.NATS == nil || !view.NATS.Connected || len(view.NATS.Routes) != len(c.nodes)-1 || view.NATS.JetStream.MetaLeader == "" {
		t.Fatalf("NATS state of %s: %+v", node.name, view.NATS)
	}
}

// Killing a node that only watches leaves the others serving; killing the
// owner sends watchers `offline`, and once it is back they get every
// event once.
func TestClusterSurvivesNodeLossAndOwnerRestart(t *testing.T) {
	c := startEmbeddedCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	id := createOn(t, n1, "n1", 50)
	watch2 := openSSE(t, n2.URL("/sse/log/"+id), "")
	watch3 := openSSE(t, n3.URL("/sse/log/"+id), "")
	first := readSSE(t, watch3, 10)

	n2.sc.Kill()
	more := readSSE(t, watch3, 20)
	checkContiguous(t, "node 3 while node 2 is down", append(first, more...))
	if code := do(t, http.MethodGet, n1.URL("/api/v1/emitters/"+id), "", nil); code != http.StatusOK {
		t.Fatalf("node 1 after node 2's loss: %d", code)
	}
	_ = watch2

	t.Cleanup(func() {
		if t.Failed() {
			// Its goroutines say where it stopped: SIGQUIT makes the Go
			// runtime write them to the log printed after this.
			_ = n3.sc.cmd.Process.Signal(syscall.SIGQUIT)
			<-n3.sc.done
		}
	})
	n1.sc.Kill()
	seqs, offline := readUntilOffline(t, watch3, append(first, more...))
	if !offline {
		t.Fatal("no offline event within 30s of the owner's loss")
	}
	c.restart(n1)
	after := readSSE(t, watch3, 30)
	all := append(seqs, after...)
	checkContiguous(t, "node 3 across the owner's restart", all)
}

// /fib/next asked on all three nodes at once gives one gap-free sequence:
// the shared fibonacci runs once in the cluster.
func TestClusterSharedFibonacci(t *testing.T) {
	c := startEmbeddedCluster(t, 3)
	const perNode = 30
	var mu sync.Mutex
	var positions []int
	var wg sync.WaitGroup
	for _, node := range c.nodes {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perNode / 3 {
					var r struct {
						Position int `json:"position"`
					}
					a := send(t, http.MethodPost, node.URL("/fib/next"), "", nil)
					if a.status != http.StatusOK {
						t.Errorf("fib next on %s: %d %s", node.name, a.status, a.body)
						return
					}
					_ = json.Unmarshal(a.body, &r)
					mu.Lock()
					positions = append(positions, r.Position)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	sort.Ints(positions)
	for i, p := range positions {
		if p != positions[0]+i {
			t.Fatalf("positions from 3 nodes are not one gap-free sequence: %v", positions)
		}
	}
	if len(positions) != 3*perNode {
		t.Fatalf("%d answers, want %d", len(positions), 3*perNode)
	}
}

// Two nodes joined to an external NATS server (started here from the Go
// module) share emitters and streams the same way.
func TestClusterOnExternalNATS(t *testing.T) {
	ns := natstest.RunServer(t)
	c := startExternalCluster(t, 2, ns.URL())
	x1, x2 := c.nodes[0], c.nodes[1]
	c.waitNodesUp(x2, 2)
	id := createOn(t, x1, "x1", 50)
	seqs := readSSE(t, openSSE(t, x2.URL("/sse/log/"+id), ""), 20)
	checkContiguous(t, "x2 watching x1", seqs)
	var view struct {
		Mode  string
		Nodes []struct {
			Name     string
			Emitters int
		}
	}
	do(t, http.MethodGet, x2.URL("/api/v1/cluster"), "", &view)
	if view.Mode != "external" || len(view.Nodes) != 2 {
		t.Fatalf("cluster view on x2: %+v", view)
	}
	// A delete through x2 stops the emitter on x1.
	if code := do(t, http.MethodDelete, x2.URL("/api/v1/emitters/"+id), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete via x2: %d", code)
	}
	if code := do(t, http.MethodGet, x1.URL("/api/v1/emitters/"+id), "", nil); code != http.StatusNotFound {
		t.Fatalf("emitter still on x1 after delete via x2: %d", code)
	}
	// Without its NATS a node is not ready: an orchestrator takes it out.
	if code := do(t, http.MethodGet, x1.URL("/readyz"), "", nil); code != http.StatusOK {
		t.Fatalf("readyz with NATS up: %d", code)
	}
	ns.Shutdown()
	eventually(t, "x1 not ready without NATS", 20*time.Second, func() bool {
		a := send(t, http.MethodGet, x1.URL("/readyz"), "", nil)
		return a.status == http.StatusServiceUnavailable && a.errorCode() == "unavailable"
	})
}

// A single node stays as it was: no NATS, no JetStream files, and the
// cluster view names it alone.
func TestSingleNodeRunsNoNATS(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	var view api.Cluster
	if code := do(t, http.MethodGet, sc.URL("/api/v1/cluster"), "", &view); code != http.StatusOK {
		t.Fatalf("cluster view: %d", code)
	}
	if view.Mode != api.ModeSingle || len(view.Nodes) != 1 || view.NATS != nil {
		t.Fatalf("single node's view: %+v", view)
	}
	if _, err := os.Stat(filepath.Join(sc.dataDir, "nats")); !os.IsNotExist(err) {
		t.Fatalf("a single node made a NATS store: %v", err)
	}
	if strings.Contains(sc.Logs(), "nats server started") {
		t.Fatal("a single node started NATS")
	}
}

// A tracker publish on node 3 reaches a WebSocket subscriber on node 1 and
// an SSE subscriber on node 2 with one seq for the cluster; a kill -9 of
// the publishing node right after its 202 loses nothing.
func TestClusterTrackerAcrossNodes(t *testing.T) {
	c := startEmbeddedCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ws := dialWS(t, n1.URL("/ws/track/alice"))
	sse := openSSE(t, n2.URL("/sse/track/alice"), "")
	var seqs []uint64
	for i := range 20 {
		var r struct{ Seq uint64 }
		publisher := n3
		if i%2 == 1 {
			publisher = n1 // publishes from two nodes share one sequence
		}
		if code := do(t, http.MethodPost, publisher.URL("/track/alice"), fmt.Sprintf(`{"i":%d}`, i), &r); code != http.StatusAccepted {
			t.Fatalf("publish %d on %s: %d", i, publisher.name, code)
		}
		seqs = append(seqs, r.Seq)
	}
	checkContiguous(t, "acknowledged seqs", seqs)
	viaSSE := readSSE(t, sse, 20)
	if viaSSE[0] != seqs[0] {
		t.Fatalf("SSE on node 2 starts at %d, want %d", viaSSE[0], seqs[0])
	}
	checkContiguous(t, "SSE on node 2", viaSSE)
	for i := range 20 {
		var env struct {
			Seq  uint64
			Data struct{ I int }
		}
		readEnvelope(t, ws, &env)
		if env.Seq != seqs[i] || env.Data.I != i {
			t.Fatalf("WS on node 1, event %d: seq %d data %d, want seq %d", i, env.Seq, env.Data.I, seqs[i])
		}
	}

	// Acknowledged, then the publisher dies: the others still have it.
	var last struct{ Seq uint64 }
	if code := do(t, http.MethodGet, n3.URL("/track/alice?data=last"), "", &last); code != http.StatusAccepted {
		t.Fatalf("last publish: %d", code)
	}
	n3.sc.Kill()
	var page struct {
		Events []struct {
			Seq  uint64
			Data string
		} `json:"events"`
	}
	var a answer
	eventually(t, "node 2 serves the last acknowledged publish", 20*time.Second, func() bool {
		a = send(t, http.MethodGet, n2.URL(fmt.Sprintf("/api/v1/streams/track:alice/events?after=%d", last.Seq-1)), "", nil)
		ok := a.status == http.StatusOK && json.Unmarshal(a.body, &page) == nil && len(page.Events) == 1 &&
			page.Events[0].Seq == last.Seq && page.Events[0].Data == "last"
		if !ok {
			t.Logf("node 2: %d %s", a.status, a.body)
		}
		return ok
	})
	if ev := readSSE(t, sse, 1); ev[0] != last.Seq {
		t.Fatalf("SSE on node 2 after the publisher's death: %d, want %d", ev[0], last.Seq)
	}
}
