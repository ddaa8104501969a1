package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A guest's emitters are the cluster's: attached on the guest's node and
// entered in the registry, so every node lists them with that node and
// serves their streams. Here every node reads one config naming the same
// guest: one node runs vm-1.console and the others are refused its id
// (two nodes never run one id). When the guest leaves the owner, its
// emitter stays listed as stopped everywhere, with its history readable
// from any node.
func TestClusterServesGuestEmittersFromAnyNode(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "sidestream.yaml")
	config := `guests:
  sources:
    - {name: fixed, type: static, guests: [{name: GUEST}]}
  rules:
    - name: console
      emitters: [{kind: log, config: {source: synthetic, rate: 20}}]
`
	writeConfig(t, cfg, strings.Replace(config, "GUEST", "vm-1", 1))
	c := startEmbeddedCluster(t, 3, "--config", cfg)
	const id = "vm-1.console"
	type listed struct {
		ID, Node string
		Stopped  bool
	}
	var owner *clusterNode
	eventually(t, "every node lists "+id+" on one node", 60*time.Second, func() bool {
		nodes := map[string]bool{}
		for _, n := range c.nodes {
			var e listed
			if do(t, http.MethodGet, n.URL("/api/v1/emitters/"+id), "", &e) != http.StatusOK || e.Node == "" {
				return false
			}
			nodes[e.Node] = true
		}
		if len(nodes) != 1 {
			return false
		}
		for _, n := range c.nodes {
			if nodes[n.name] {
				owner = n
			}
		}
		return owner != nil
	})
	for _, n := range c.nodes {
		want := "present/failed" // refused: the id is the owner's
		if n == owner {
			want = "present/running"
		}
		eventually(t, fmt.Sprintf("%s's guest view says %s", n.name, want), 30*time.Second, func() bool {
			return emitterState(t, n.sc, "fixed/vm-1", id) == want
		})
	}
	var other *clusterNode
	for _, n := range c.nodes {
		if n != owner {
			other = n
			break
		}
	}
	checkContiguous(t, "SSE on "+other.name, readSSE(t, openSSE(t, other.URL("/api/v1/streams/"+id+"/sse"), ""), 10))

	// The guest leaves the owner (only it reloads): stopped, still listed.
	writeConfig(t, cfg, strings.Replace(config, "GUEST", "vm-2", 1))
	_ = owner.sc.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, other.name+" lists "+id+" stopped on "+owner.name, 30*time.Second, func() bool {
		var e listed
		return do(t, http.MethodGet, other.URL("/api/v1/emitters/"+id), "", &e) == http.StatusOK && e.Stopped && e.Node == owner.name
	})
	var page struct {
		Events []struct{ Seq uint64 } `json:"events"`
	}
	if code := do(t, http.MethodGet, other.URL("/api/v1/streams/"+id+"/events?limit=5"), "", &page); code != http.StatusOK || len(page.Events) == 0 {
		t.Fatalf("history of the stopped %s on %s: %d %+v", id, other.name, code, page.Events)
	}
}
