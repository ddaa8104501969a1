package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// explorerShots saves what a user sees at 1400 px and 390 px, light and
// dark, under e2e/artifacts/ (the path is logged), and checks that no
// viewport makes the page wider than the device. The page is left at
// 1400 px, light.
func explorerShots(t *testing.T, p *browserPage, name, scrollTo string) {
	t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		p.do("color scheme "+scheme, colorScheme(scheme))
		for _, v := range []struct {
			width, height int64
			mobile        bool
		}{{1400, 900, false}, {390, 844, true}} {
			shot := fmt.Sprintf("livedoc-%s-%d-%s", name, v.width, scheme)
			scroll := ""
			if v.mobile {
				scroll = scrollTo
			}
			p.screenshot(shot, v.width, v.height, v.mobile, scroll)
			abs, _ := filepath.Abs(filepath.Join("artifacts", shot+".png"))
			t.Logf("screenshot: %s", abs)
			// Against the device width: a page too wide zooms out, and
			// then innerWidth grows with it.
			if w := evalJS[int](p, `document.documentElement.scrollWidth`); w > int(v.width)+1 {
				t.Errorf("%s: page is %d px wide on a %d px device", shot, w, v.width)
			}
		}
	}
	p.do("back to 1400 px, light", colorScheme("light"), chromedp.EmulateViewport(1400, 900))
}

// colorScheme makes the page see prefers-color-scheme: scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// checkAxe runs the accessibility audit (axeAudit) on the shown tab and
// fails on serious or critical violations.
func checkAxe(t *testing.T, p *browserPage, tab string) {
	t.Helper()
	if !evalJS[bool](p, `!!window.axe`) {
		p.do("load axe-core", chromedp.Evaluate[chromedp.Void](axeSource))
	}
	a := axeAudit(t, p, tab)
	if a.Passes < 10 {
		t.Fatalf("%s: axe passed only %d rules: did it run on the page?", tab, a.Passes)
	}
	for _, v := range a.Violations {
		t.Errorf("%s: axe %s %s: %s at %v", tab, v.Impact, v.ID, v.Help, v.Nodes)
	}
}

// createEmitter creates an emitter from a JSON body and returns its id.
func createEmitter(t *testing.T, sc *sidecar, body string) string {
	t.Helper()
	var out struct{ ID string }
	if st := do(t, http.MethodPost, sc.URL("/api/v1/emitters"), body, &out); st != http.StatusCreated {
		t.Fatalf("create %s: %d", body, st)
	}
	return out.ID
}

// waitHead waits (bounded) until the emitter's stream head passes n.
func waitHead(t *testing.T, sc *sidecar, id string, n uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s past seq %d", id, n), 60*time.Second, func() bool {
		var page struct{ Head uint64 }
		do(t, http.MethodGet, sc.URL("/api/v1/streams/"+id+"/events?limit=1"), "", &page)
		return page.Head > n
	})
}

// The node overview is the first tab and stays live: the emitter the test
// made is listed running, with events/s above zero, a last event time and
// its plugin's restarts; the plugins with their health; a queue with its
// depth. All of it refreshes without a click.
func TestLivedocOverviewInBrowser(t *testing.T) {
	requireChromium(t)
	sc := startSidecar(t, t.TempDir())
	id := createEmitter(t, sc, `{"kind":"magic","id":"ov-magic","config":{"rate":50},"labels":{"guest":"vm-ov"}}`)
	q := map[string]string{"X-Project-Id": "livedoc", "Client-ID": "3b8c1e1a-3c52-4f7c-9f0e-6d1f2a4b5c6d"}
	if a := send(t, http.MethodPut, sc.URL("/v2/queues/ov-orders"), "", q); a.status/100 != 2 {
		t.Fatalf("create queue: %d %s", a.status, a.body)
	}
	if a := send(t, http.MethodPost, sc.URL("/v2/queues/ov-orders/messages"),
		`{"messages":[{"ttl":300,"body":{"n":1}},{"ttl":300,"body":{"n":2}},{"ttl":300,"body":{"n":3}}]}`, q); a.status != http.StatusCreated {
		t.Fatalf("post messages: %d %s", a.status, a.body)
	}

	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.do("open livedoc", chromedp.Navigate(sc.URL("/livedoc")), chromedp.EmulateViewport(1400, 900))
	p.waitJS("the overview is the first tab", `!document.getElementById('panel-overview').hidden && location.hash === '#overview'`)
	card := `document.querySelector('.ov-card[data-id="` + id + `"]')`
	p.waitJS("the emitter with events/s above zero", card+` && parseFloat(`+card+`.querySelector('.ov-eps').textContent) > 0`)
	if st := evalJS[string](p, card+`.querySelector('.pill').textContent`); st != "running" {
		t.Errorf("emitter state shows %q, want running", st)
	}
	p.waitJS("its last event time", card+`.querySelector('.ov-last time')?.textContent.endsWith('ago') || `+card+`.querySelector('.ov-last time')?.textContent === 'just now'`)
	if r := evalJS[string](p, card+`.querySelector('.ov-restarts dd').textContent`); r != "0" {
		t.Errorf("plugin restarts show %q, want 0", r)
	}
	if n := evalJS[int](p, card+`.querySelectorAll('.spark polyline').length`); n != 1 {
		t.Errorf("%d sparklines, want 1", n)
	}
	p.waitJS("the magic plugin running", `document.querySelector('#ov-plugins li[data-plugin="magic"] .pill.running')`)
	p.waitJS("the queue with its depth", `document.querySelector('#ov-queues li[data-queue="ov-orders"] .ov-depth')?.textContent === '3 messages'`)

	// Live: the page refreshes by itself, and sees a new emitter and a
	// deeper queue with no click.
	before := evalJS[string](p, `document.getElementById('ov-status').textContent`)
	p.waitJS("a refresh without a click", `document.getElementById('ov-status').textContent !== `+fmt.Sprintf("%q", before))
	id2 := createEmitter(t, sc, `{"kind":"time","id":"ov-time","config":{"interval":"100ms"}}`)
	p.waitJS("the new emitter appears by itself", `document.querySelector('.ov-card[data-id="`+id2+`"]')`)
	if a := send(t, http.MethodPost, sc.URL("/v2/queues/ov-orders/messages"), `{"messages":[{"ttl":300,"body":{"n":4}}]}`, q); a.status != http.StatusCreated {
		t.Fatalf("post message: %d %s", a.status, a.body)
	}
	p.waitJS("the queue deepens by itself", `document.querySelector('#ov-queues li[data-queue="ov-orders"] .ov-depth')?.textContent === '4 messages'`)
	checkAxe(t, p, "overview")
	explorerShots(t, p, "overview", `.ov-card[data-id="`+id+`"]`)

	// The emitter's name opens it in the stream viewer.
	p.do("open the emitter", chromedp.Click(chromedp.CSS(`.ov-card[data-id="`+id+`"] button.linkish`)))
	p.waitJS("viewer live on it", `!document.getElementById('panel-viewer').hidden && document.getElementById('vw-state').textContent === 'live' && document.getElementById('vw-stream').value === '`+id+`'`)
}

// The stream viewer: a log stream as a log viewer (level colours, the
// event's own timestamp, search and level filters, follow/pause, "load
// older" paging back through history), a numeric stream as a live chart,
// each frame formatted on demand, and a gap marker on the timeline when
// the viewer starts behind what the node keeps.
func TestLivedocStreamViewerInBrowser(t *testing.T) {
	requireChromium(t)
	sc := startSidecar(t, t.TempDir())
	logID := createEmitter(t, sc, `{"kind":"log","id":"vw-log","config":{"source":"synthetic","rate":50},"retention":{"persist":true}}`)
	p := openBrowser(t, sc.addr) // while the history fills
	waitHead(t, sc, logID, 260)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.do("open the viewer", chromedp.Navigate(sc.URL("/livedoc#viewer")), chromedp.EmulateViewport(1400, 900))
	p.waitJS("the log emitter listed", `document.querySelector('#vw-stream option[value="`+logID+`"]')`)
	p.do("open the log stream", chromedp.SetValue(chromedp.CSS(`#vw-stream`), logID), chromedp.Click(chromedp.CSS(`#vw-open`)))
	p.waitJS("live with a page of history", `document.getElementById('vw-state').textContent === 'live' && document.querySelectorAll('#vw-log li.vw-row').length >= 100`)
	p.waitJS("level colours", `document.querySelector('#vw-log .lvl.lvl-info, #vw-log .lvl.lvl-error, #vw-log .lvl.lvl-warn')`)

	// The time shown is the event's own timestamp, not the page's clock.
	first := evalJS[[]string](p, `(() => { const li = document.querySelector('#vw-log li.vw-row'); return [li.dataset.seq, li.querySelector('time').getAttribute('datetime')]; })()`)
	var page struct {
		Events []struct {
			Data struct{ Timestamp time.Time }
		}
	}
	var seq uint64
	fmt.Sscan(first[0], &seq)
	do(t, http.MethodGet, sc.URL(fmt.Sprintf("/api/v1/streams/%s/events?after=%d&limit=1", logID, seq-1)), "", &page)
	shown, err := time.Parse(time.RFC3339Nano, first[1])
	if err != nil || len(page.Events) != 1 || !shown.Equal(page.Events[0].Data.Timestamp.Truncate(time.Millisecond)) {
		t.Errorf("seq %d shows time %q, its event says %v (%v)", seq, first[1], page.Events, err)
	}

	// Load older fetches the page of earlier seqs, in order, no copy-paste.
	oldest := evalJS[int](p, `+document.querySelector('#vw-log li.vw-row').dataset.seq`)
	p.do("load older", chromedp.Click(chromedp.CSS(`#vw-older`)))
	p.waitJS("earlier seqs", `+document.querySelector('#vw-log li.vw-row').dataset.seq < `+fmt.Sprint(oldest))
	seqs := evalJS[[]int](p, `[...document.querySelectorAll('#vw-log li.vw-row')].map((li) => +li.dataset.seq)`)
	if seqs[0] != oldest-100 {
		t.Errorf("after load older the oldest seq is %d, want %d", seqs[0], oldest-100)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("rows skip or repeat: seq %d after %d", seqs[i], seqs[i-1])
		}
	}

	// Filters: a level, a search with no match.
	p.do("errors only", chromedp.SetValue(chromedp.CSS(`#vw-level`), "error"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('vw-level').dispatchEvent(new Event('change'))`))
	p.waitJS("only error rows", `[...document.querySelectorAll('#vw-log li.vw-row')].every((li) => li.querySelector('.lvl').textContent === 'error')`)
	p.do("all levels, search nonsense", chromedp.SetValue(chromedp.CSS(`#vw-level`), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('vw-level').dispatchEvent(new Event('change'))`),
		chromedp.SendKeys(chromedp.CSS(`#vw-search`), "zz-no-such-text-zz"))
	p.waitJS("no match said", `!document.getElementById('vw-none').hidden && !document.querySelector('#vw-log li.vw-row')`)
	p.do("clear search", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('vw-search'); s.value = ''; s.dispatchEvent(new Event('input')); })()`))

	// Reading history paused the view: new events are held, not shown,
	// until Follow.
	if pressed := evalJS[string](p, `document.getElementById('vw-follow').getAttribute('aria-pressed')`); pressed != "true" {
		t.Errorf("after load older the view still follows (aria-pressed %s)", pressed)
	}
	held := evalJS[int](p, `document.querySelectorAll('#vw-log li.vw-row').length`)
	p.waitJS("new events held", `/Follow \([1-9]\d* new\)/.test(document.getElementById('vw-follow').textContent)`)
	if n := evalJS[int](p, `document.querySelectorAll('#vw-log li.vw-row').length`); n != held {
		t.Errorf("paused, the list grew from %d to %d rows", held, n)
	}
	p.do("follow", chromedp.Click(chromedp.CSS(`#vw-follow`)))
	p.waitJS("held events shown", `document.querySelectorAll('#vw-log li.vw-row').length > `+fmt.Sprint(held))

	// A frame, formatted.
	p.do("expand a frame", chromedp.Evaluate[chromedp.Void](`document.querySelector('#vw-log li.vw-row:last-child .vw-toggle').click()`))
	p.waitJS("the frame shown", `document.querySelector('#vw-log .vw-frame')`)
	if f := evalJS[string](p, `document.querySelector('#vw-log .vw-frame').textContent`); !strings.Contains(f, "\"seq\": ") || !strings.Contains(f, "\n  \"data\": {") {
		t.Errorf("frame not formatted: %q", f)
	}
	p.waitJS("the log stream charted as events/s", `document.getElementById('vw-chart').dataset.series === 'events/s'`)
	checkAxe(t, p, "viewer")
	// Paused for the pictures: a busy test machine draws slowly.
	p.do("pause for the pictures", chromedp.Click(chromedp.CSS(`#vw-follow`)))
	explorerShots(t, p, "viewer-log", `#vw-log`)

}

// The stream viewer on numeric streams: a live chart of their numbers
// (Fibonacci positions, magic numbers kept exact beyond 2^53), and a gap
// marker in the list and on the timeline when the viewer starts behind
// what the node keeps.
func TestLivedocStreamChartInBrowser(t *testing.T) {
	requireChromium(t)
	sc := startSidecar(t, t.TempDir())
	// The gap stream fills while the browser starts and charts fib: a
	// fast stream the node keeps only in memory, read later from seq 1.
	gapID := createEmitter(t, sc, `{"kind":"magic","id":"vw-gap","config":{"rate":400},"retention":{"persist":false}}`)
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.do("open the viewer", chromedp.Navigate(sc.URL("/livedoc#viewer")), chromedp.EmulateViewport(1400, 900))
	p.do("open fib", chromedp.SetValue(chromedp.CSS(`#vw-stream`), "fib"), chromedp.Click(chromedp.CSS(`#vw-open`)))
	p.waitJS("fib live", `document.getElementById('vw-state').textContent === 'live'`)
	do(t, http.MethodPost, sc.URL("/fib/next"), "", nil)
	do(t, http.MethodPost, sc.URL("/fib/next"), "", nil)
	p.waitJS("fib position charted", `document.getElementById('vw-chart').dataset.series.split(' ').includes('position')`)

	// A gap: start after seq 1 on the stream; the node says what it no
	// longer has.
	waitHead(t, sc, gapID, 4600) // beyond the 4096 events kept in memory
	p.do("list it", chromedp.Evaluate[chromedp.Void](`document.getElementById('tab-overview').click(); document.getElementById('tab-viewer').click()`))
	p.waitJS("listed", `document.querySelector('#vw-stream option[value="`+gapID+`"]')`)
	p.do("open it after seq 1", chromedp.SetValue(chromedp.CSS(`#vw-stream`), gapID), chromedp.SetValue(chromedp.CSS(`#vw-after`), "1"),
		chromedp.Click(chromedp.CSS(`#vw-open`)))
	p.waitJS("a gap marker row", `document.querySelector('#vw-log li.vw-marker.gap')?.textContent.includes('no longer kept')`)
	p.waitJS("20 magic rows", `document.querySelectorAll('#vw-log li.vw-row').length >= 20`)
	// Stopped as soon as what is checked below is on the page: every
	// frame of a 400 events/s stream is a DOM change the test's CDP
	// client mirrors, which under -race outruns a busy machine (a
	// minute of backlog), and a busy machine draws the pictures slowly.
	p.do("stop", chromedp.Evaluate[chromedp.Void](`document.getElementById('vw-stop').click()`))
	p.waitJS("stopped", `document.getElementById('vw-state').textContent === 'stopped'`)
	p.waitJS("a gap marker on the timeline", `document.getElementById('vw-chart').dataset.markers.split(' ').includes('gap')`)
	if m := evalJS[string](p, `document.getElementById('vw-markers').textContent`); m == "0" {
		t.Error("the marker count says 0 with a gap shown")
	}
	p.waitJS("magic charted", `document.getElementById('vw-chart').dataset.series.split(' ').includes('magic')`)
	// Magic numbers go beyond 2^53: rows show them as sent, not rounded
	// to a double (which prints 17 significant digits and then zeros).
	magics := evalJS[[]string](p, `[...document.querySelectorAll('#vw-log li.vw-row .vw-msg')].slice(-20).map((m) => (m.textContent.match(/"magic":-?(\d+)/) || [])[1] || '')`)
	exact := false
	for _, m := range magics {
		if m == "" {
			t.Fatalf("a magic row without its number: %q", magics)
		}
		exact = exact || (len(m) >= 18 && !strings.HasSuffix(m, "00"))
	}
	if !exact {
		t.Errorf("magic numbers look rounded: %q", magics)
	}
	explorerShots(t, p, "viewer-chart", `#vw-chart`)
}

// runCurl runs the curl command the reference shows, as a user pasting
// it in a shell would.
func runCurl(t *testing.T, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd+" -w '\\n%{http_code}'").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// The reference as a reader uses it: contents with a link per route, the
// schemas of bodies and answers, the example that belongs to each status,
// a curl for every call that does what the route says when pasted in a
// shell, and "no match" when the filter leaves nothing.
func TestLivedocReferenceInBrowser(t *testing.T) {
	requireChromium(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the reference's curl commands")
	}
	sc := startSidecar(t, t.TempDir())
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.do("open a route by its address", chromedp.Navigate(sc.URL("/livedoc#reference/listPlugins")), chromedp.EmulateViewport(1400, 900))
	p.waitJS("that route open", `document.querySelector('details.op[data-key="listPlugins"]')?.open && location.hash === '#reference/listPlugins'`)
	ops := evalJS[int](p, `document.querySelectorAll('details.op').length`)
	links := evalJS[[]string](p, `[...document.querySelectorAll('.ref-toc a')].map((a) => a.getAttribute('href'))`)
	if len(links) != ops {
		t.Fatalf("contents list %d routes, the reference %d", len(links), ops)
	}
	for _, l := range links {
		key := strings.TrimPrefix(l, "#reference/")
		if !evalJS[bool](p, `!!document.querySelector('details.op[data-key="`+key+`"]')`) {
			t.Errorf("contents link %s leads nowhere", l)
		}
	}
	p.do("follow a contents link", chromedp.Click(chromedp.CSS(`.ref-toc a[href="#reference/getEmitter"]`)))
	p.waitJS("getEmitter open", `document.querySelector('details.op[data-key="getEmitter"]').open && location.hash === '#reference/getEmitter'`)

	// Examples per status: a 404 shows not_found, not a 400's example.
	op := `document.querySelector('details.op[data-key="getEmitter"]')`
	if ex := evalJS[string](p, op+`.querySelector('li[data-code="404"] pre').textContent`); !strings.Contains(ex, `"not_found"`) {
		t.Errorf("404 example: %s", ex)
	}
	// The answer's schema, with what the overview relies on.
	schema := evalJS[string](p, op+`.querySelector('li[data-code="200"] .schema').textContent`)
	for _, want := range []string{"activity", "events_per_sec", "state", "created_at"} {
		if !strings.Contains(schema, want) {
			t.Errorf("200 schema lacks %q: %s", want, schema)
		}
	}

	// The curl of a route, filled from the form, does what the route does.
	p.do("fill the id", chromedp.Evaluate[chromedp.Void](`(() => { const i = `+op+`.querySelector('input[id$="-path-id"]');
		i.value = 'magic'; i.dispatchEvent(new Event('input', {bubbles: true})); })()`))
	curl := evalJS[string](p, op+`.querySelector('.curl-cmd').textContent`)
	if !strings.Contains(curl, sc.URL("/api/v1/emitters/magic")) {
		t.Errorf("curl %q does not name the route", curl)
	}
	if out := runCurl(t, curl); !strings.Contains(out, `"id":"magic"`) || !strings.HasSuffix(out, "200") {
		t.Errorf("getEmitter's curl answered %s", out)
	}
	create := `document.querySelector('details.op[data-key="createEmitter"]')`
	curl = evalJS[string](p, create+`.querySelector('.curl-cmd').textContent`)
	if !strings.Contains(curl, "-X POST") || !strings.Contains(curl, "--data-raw") {
		t.Errorf("createEmitter's curl %q lacks its method or body", curl)
	}
	if out := runCurl(t, curl); !strings.HasSuffix(out, "201") {
		t.Errorf("createEmitter's curl answered %s", out)
	}
	if ex := evalJS[string](p, create+`.querySelector('li[data-code="409"] pre').textContent`); !strings.Contains(ex, `"exists"`) {
		t.Errorf("409 example: %s", ex)
	}
	n := evalJS[int](p, `document.querySelectorAll('.curl-cmd').length`)
	if n != ops {
		t.Errorf("%d curl commands for %d routes", n, ops)
	}
	checkAxe(t, p, "reference")
	explorerShots(t, p, "reference", `details.op[data-key="getEmitter"]`)

	// A filter that matches nothing says so.
	p.do("filter on nonsense", chromedp.SendKeys(chromedp.CSS(`#ref-filter`), "zz-nothing-zz"))
	p.waitJS("no match", `!document.getElementById('ref-none').hidden && document.getElementById('ref-none').textContent.includes('zz-nothing-zz')`)
	if vis := evalJS[int](p, `document.querySelectorAll('details.op:not([hidden]), .ref-toc li:not([hidden])').length`); vis != 0 {
		t.Errorf("%d routes or links still shown", vis)
	}
}
