package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/natsbus/natstest"
)

// clusterNode is one sidestream process of a test cluster, with the fixed
// ports and flags it restarts with.
type clusterNode struct {
	name    string
	http    int
	dataDir string
	flags   []string
	sc      *sidecar
}

// URL is the address of path on the node.
func (n *clusterNode) URL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.http, path)
}

// testCluster is several real sidestream processes on loopback ports.
type testCluster struct {
	t     *testing.T
	nodes []*clusterNode
}

// freePorts returns n loopback TCP ports no other test of this process
// was given, from below the kernel's ephemeral range (natstest.FreePorts
// says why).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	return natstest.FreePorts(t, n)
}

// startEmbeddedCluster starts n nodes that embed NATS and route to each
// other (cluster mode with its defaults: R3 from three nodes).
func startEmbeddedCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
	}
	c := &testCluster{t: t}
	for i := range n {
		node := &clusterNode{name: fmt.Sprintf("n%d", i+1), http: ports[i], dataDir: t.TempDir()}
		node.flags = append([]string{"--cluster-name", "e2e", "--node-name", node.name,
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[n+i]), "--cluster-routes", strings.Join(routes, ","),
			"--advertise", node.URL("")}, extra...)
		c.nodes = append(c.nodes, node)
	}
	c.startAll()
	return c
}

// startExternalCluster starts n nodes joined to the NATS server at url.
func startExternalCluster(t *testing.T, n int, url string, extra ...string) *testCluster {
	t.Helper()
	ports := freePorts(t, n)
	c := &testCluster{t: t}
	for i := range n {
		node := &clusterNode{name: fmt.Sprintf("x%d", i+1), http: ports[i], dataDir: t.TempDir()}
		node.flags = append([]string{"--nats-url", url, "--node-name", node.name, "--advertise", node.URL("")}, extra...)
		c.nodes = append(c.nodes, node)
	}
	c.startAll()
	return c
}

// startAll launches every node at once (JetStream needs a quorum before
// any of them serves) and waits until all serve.
func (c *testCluster) startAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, node := range c.nodes {
		node.sc = c.launch(node)
	}
	errs := make(chan string, len(c.nodes))
	for _, node := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if msg := waitServing(node.sc, 90*time.Second); msg != "" {
				errs <- node.name + ": " + msg
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		c.t.Fatal(msg)
	}
}

func (c *testCluster) launch(node *clusterNode) *sidecar {
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", node.http)}, node.flags...)
	sc := launch(c.t, node.dataDir, args...)
	return sc
}

// waitServing waits for the process's "serving" line ("" when it came).
func waitServing(sc *sidecar, limit time.Duration) string {
	select {
	case sc.addr = <-sc.ready:
		return ""
	case <-sc.done:
		return "exited before serving; logs:\n" + sc.Logs()
	case <-time.After(limit):
		return fmt.Sprintf("not serving within %s; logs:\n%s", limit, sc.Logs())
	}
}

// restart starts a killed node again on its ports and data.
func (c *testCluster) restart(node *clusterNode) {
	c.t.Helper()
	node.sc = c.launch(node)
	if msg := waitServing(node.sc, 90*time.Second); msg != "" {
		c.t.Fatal(node.name + ": " + msg)
	}
}

// waitNodesUp waits until node reports want nodes up in /api/v1/cluster.
func (c *testCluster) waitNodesUp(node *clusterNode, want int) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("%s sees %d nodes up", node.name, want), 30*time.Second, func() bool {
		var view struct {
			Nodes []struct{ Name, Health string }
		}
		if do(c.t, http.MethodGet, node.URL("/api/v1/cluster"), "", &view) != http.StatusOK {
			return false
		}
		up := 0
		for _, n := range view.Nodes {
			if n.Health == "up" {
				up++
			}
		}
		return up == want
	})
}
