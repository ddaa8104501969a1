package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The livedoc Cluster view in real Chromium against a real three-node
// cluster: the page of node 1 lists the three nodes up with their
// addresses and emitter counts, its NATS routes to the two others and
// JetStream's leader, and the emitters list says which node runs each
// emitter. A single node says it is one.
func TestLivedocClusterInBrowser(t *testing.T) {
	requireChromium(t) // skip (or fail under CI) before starting three nodes
	c := startEmbeddedCluster(t, 3)
	n1 := c.nodes[0]
	c.waitNodesUp(n1, 3)
	id := createOn(t, n1, "n2", 10) // runs on node 2, created through node 1

	p := openBrowser(t, strings.TrimPrefix(n1.URL(""), "http://"))
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.do("open the cluster view", chromedp.Navigate(n1.URL("/livedoc#cluster")))
	p.waitJS("three nodes up", `document.querySelectorAll('#cl-nodes tbody .pill.running').length === 3`)
	if mode := evalJS[string](p, `document.getElementById('cl-mode').textContent`); !strings.Contains(mode, "embedded") {
		t.Errorf("mode shows %q, want the embedded cluster", mode)
	}
	if up := evalJS[string](p, `document.getElementById('cl-up').textContent`); up != "3 of 3" {
		t.Errorf("nodes up shows %q", up)
	}
	for _, node := range c.nodes {
		row := `document.querySelector('#cl-nodes tr[data-node="` + node.name + `"]')`
		if got := evalJS[string](p, row+`.querySelector('a').getAttribute('href')`); got != node.URL("/livedoc#cluster") {
			t.Errorf("%s links to %q, want its advertised livedoc", node.name, got)
		}
	}
	p.waitJS("node 2 counts its emitter", `+document.querySelector('#cl-nodes tr[data-node="n2"] td.num').textContent >= 1`)
	if self := evalJS[string](p, `document.querySelector('#cl-nodes tr[data-node="n1"] th').textContent`); !strings.Contains(self, "this node") {
		t.Errorf("node 1's row %q does not say it is this node", self)
	}
	p.waitJS("routes to the two other nodes", `document.querySelectorAll('#cl-routes tbody tr').length === 2`)
	routes := evalJS[string](p, `document.getElementById('cl-routes').textContent`)
	if !strings.Contains(routes, "n2") || !strings.Contains(routes, "n3") {
		t.Errorf("routes table %q lacks n2 or n3", routes)
	}
	p.waitJS("a JetStream meta leader", `/^n[123]$/.test(document.getElementById('cl-leader').textContent)`)
	p.screenshot("livedoc-cluster-laptop", 1280, 900, false, "")
	checkFitsDevice(t, p, 1280) // the viewport the screenshot emulated

	p.do("emitters tab", chromedp.Click(chromedp.CSS(`#tab-emitters`)))
	p.waitJS("the emitter says where it runs", `(document.querySelector('.em-row[data-id="`+id+`"] .node') || {}).textContent === 'on n2'`)

	single := startSidecar(t, t.TempDir())
	ps := openBrowser(t, single.addr)
	ps.do("open a single node's cluster view", chromedp.Navigate(single.URL("/livedoc#cluster")))
	ps.waitJS("single node", `document.getElementById('cl-mode')?.textContent.startsWith('single node')`)
	ps.waitJS("itself alone, up", `document.querySelectorAll('#cl-nodes tbody tr').length === 1 && document.querySelector('#cl-nodes .pill.running')`)
	if evalJS[bool](ps, `!document.getElementById('cl-no-nats')`) {
		t.Error("a single node shows NATS state")
	}
	for _, pr := range ps.Problems() {
		t.Errorf("single node page problem: %s", pr)
	}
}
