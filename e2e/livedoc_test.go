package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The livedoc page in real Chromium against the real binary: it documents
// every route, drives the API (create through the schema form, commands,
// WebSocket echo), shows validation errors where they belong, streams
// events live, and does so without a console error, a failed request or a
// request that leaves the node.
func TestLivedocInBrowser(t *testing.T) {
	sc := startSidecar(t, t.TempDir())
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})

	t.Run("root lands on livedoc with the full reference", func(t *testing.T) {
		p.t = t
		p.do("open /", chromedp.Navigate(sc.URL("/")), chromedp.Click(chromedp.CSS(`#tab-reference`)))
		p.waitJS("reference rendered", `document.querySelectorAll('details.op').length > 0`)
		if path := evalJS[string](p, `location.pathname`); path != "/livedoc" {
			t.Fatalf("/ landed on %q, want /livedoc", path)
		}
		want := countOperations(t, sc.URL("/openapi.json"))
		if got := evalJS[int](p, `document.querySelectorAll('details.op').length`); got != want {
			t.Fatalf("reference shows %d operations, the document has %d", got, want)
		}
		// Try it sends the real request and shows status, headers and body.
		p.tryIt(`get /healthz`)
		p.waitJS("healthz result", `(document.querySelector('details.op[data-search^="get /healthz"] .result.ok') || {}).textContent?.includes('"status": "ok"')`)
		res := evalJS[string](p, `document.querySelector('details.op[data-search^="get /healthz"] .result').textContent`)
		for _, want := range []string{"200", "content-type", "ms"} {
			if !strings.Contains(strings.ToLower(res), want) {
				t.Errorf("Try it result lacks %q: %s", want, res)
			}
		}
		// A body from the document's example; an SSE route read for a
		// while and cut; a WebSocket route opens the console.
		p.tryIt(`put /log`)
		p.waitJS("PUT /log created", `(document.querySelector('details.op[data-search^="put /log"] .result.ok') || {}).textContent?.includes('"id": "em-')`)
		p.tryIt(`get /magic`)
		p.waitJS("SSE read and cut", `(document.querySelector('details.op[data-search^="get /magic"] .result.ok') || {}).textContent?.includes('stream cut by the page')`)
		if sse := evalJS[string](p, `document.querySelector('details.op[data-search^="get /magic"] .result pre').textContent`); !strings.Contains(sse, "retry:") {
			t.Errorf("SSE Try it body lacks the retry: line: %q", sse)
		}
		p.tryIt(`get /echo`)
		p.waitJS("echo socket opened from the reference", `!document.getElementById('panel-streams').hidden && document.getElementById('ws-state').textContent === 'open'`)
		p.do("close it", chromedp.Click(chromedp.CSS(`#ws-close`)), chromedp.Click(chromedp.CSS(`#tab-reference`)))
		// Tabs work from the keyboard.
		p.do("arrow to next tab", chromedp.Focus(chromedp.CSS(`#tab-reference`)), chromedp.SendKeys(chromedp.CSS(`#tab-reference`), kb.ArrowRight))
		p.waitJS("streams tab selected by keyboard", `document.activeElement.id === 'tab-streams' && !document.getElementById('panel-streams').hidden`)
		p.do("back to reference", chromedp.Click(chromedp.CSS(`#tab-reference`)))
		p.screenshot("livedoc-reference-laptop", 1280, 900, false, "")
		p.screenshot("livedoc-reference-phone", 390, 844, true, `details.op[data-search^="get /magic "]`)
		checkNoHorizontalScroll(t, p)
		p.do("restore viewport", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("create a log emitter through the form and watch it stream", func(t *testing.T) {
		p.t = t
		p.do("emitters tab", chromedp.Click(chromedp.CSS(`#tab-emitters`)))
		p.waitJS("kinds loaded", `document.querySelector('#em-kind option[value=log]') && document.getElementById('cfg-rate')`)
		p.do("fill the form",
			chromedp.SendKeys(chromedp.CSS(`#cfg-rate`), "50"),
			chromedp.SendKeys(chromedp.CSS(`#em-guest`), "vm-e2e"),
			chromedp.SendKeys(chromedp.CSS(`#em-id`), "e2e-log"),
			chromedp.Click(chromedp.CSS(`#em-submit`)))
		p.waitJS("created", `document.getElementById('em-watch-new')`)
		kinds := itemCount(t, sc.URL("/api/v1/kinds"), nil)
		p.waitJS("kind filter lists every kind", fmt.Sprintf(`document.querySelectorAll('#em-kind-filter option').length === %d`, kinds+1)) // and "any"
		p.waitJS("listed with its guest label", `[...document.querySelectorAll('.em-row')].some(r => r.dataset.id === 'e2e-log' && r.textContent.includes('guest=vm-e2e'))`)
		p.do("filter by guest", chromedp.SendKeys(chromedp.CSS(`#em-guest-filter`), "vm-e2e"),
			chromedp.Click(chromedp.CSS(`#em-filter button[type=submit]`)))
		p.waitJS("only the guest's emitter", `[...document.querySelectorAll('.em-row')].map(r => r.dataset.id).join() === 'e2e-log'`)
		p.do("clear the filter", chromedp.Evaluate[chromedp.Void](`document.getElementById('em-guest-filter').value = ''`))
		p.do("watch it", chromedp.Click(chromedp.CSS(`#em-watch-new`)))
		p.waitJS("events streaming in", `document.querySelectorAll('#sse-log li').length >= 5`)
		if st := evalJS[string](p, `document.getElementById('sse-state').textContent`); st != "open" {
			t.Errorf("stream state %q, want open", st)
		}
		typ := evalJS[string](p, `document.querySelector('#sse-log li span:nth-child(2)').textContent`)
		if typ != "message" { // the default type: onmessage received it
			t.Errorf("first event type %q, want message", typ)
		}
		seq, err := strconv.Atoi(evalJS[string](p, `document.getElementById('sse-seq').textContent`))
		if err != nil || seq < 5 {
			t.Errorf("last seq %d (%v), want >= 5", seq, err)
		}
		p.waitJS("events/s shown", `parseFloat(document.getElementById('sse-rate').textContent) > 0`)
		// Pause holds events back; resume shows them.
		p.do("pause", chromedp.Click(chromedp.CSS(`#sse-pause`)))
		p.waitJS("events held while paused", `/Resume \([1-9]/.test(document.getElementById('sse-pause').textContent)`)
		p.do("resume", chromedp.Click(chromedp.CSS(`#sse-pause`)))
		p.screenshot("livedoc-streams-laptop", 1280, 900, false, "")
		p.screenshot("livedoc-streams-phone", 390, 844, true, "#sse-title")
		checkNoHorizontalScroll(t, p)
		p.do("stop and restore viewport", chromedp.Click(chromedp.CSS(`#sse-stop`)), chromedp.EmulateViewport(1280, 900))
	})

	t.Run("validation errors appear next to their fields", func(t *testing.T) {
		p.t = t
		p.allow4xx("/api/v1/emitters")
		p.do("emitters tab", chromedp.Click(chromedp.CSS(`#tab-emitters`)))
		p.do("choose magic", chromedp.SetValue(chromedp.CSS(`#em-kind`), "magic"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('em-kind').dispatchEvent(new Event('change'))`))
		p.waitJS("magic form", `document.getElementById('cfg-rate') && !document.getElementById('cfg-interval')`)
		p.do("bad rate", chromedp.SendKeys(chromedp.CSS(`#cfg-rate`), "-1"), chromedp.Click(chromedp.CSS(`#em-submit`)))
		p.waitJS("rate error shown", `document.querySelector('#em-config [data-field=rate] .field-error').textContent.length > 0`)
		if inv := evalJS[string](p, `document.getElementById('cfg-rate').getAttribute('aria-invalid') || ''`); inv != "true" {
			t.Errorf("rate field aria-invalid=%q, want true", inv)
		}
		if focus := evalJS[string](p, `document.activeElement.id`); focus != "cfg-rate" {
			t.Errorf("focus on %q after the error, want the invalid field cfg-rate", focus)
		}
		p.do("bad id", chromedp.SetValue(chromedp.CSS(`#cfg-rate`), "5"), chromedp.SendKeys(chromedp.CSS(`#em-id`), "bad id!"),
			chromedp.Click(chromedp.CSS(`#em-submit`)))
		p.waitJS("id error shown", `document.getElementById('em-id-err').textContent.includes('must match')`)
		if sum := evalJS[string](p, `document.getElementById('em-create-summary').textContent`); !strings.Contains(sum, "one field") || strings.Contains(sum, "null") {
			t.Errorf("error summary %q, want it to point at one marked field", sum)
		}
		if txt := evalJS[string](p, `document.querySelector('#em-config [data-field=rate] .field-error').textContent`); txt != "" {
			t.Errorf("old rate error still shown after resubmitting: %q", txt)
		}
		p.screenshot("livedoc-emitters-error-laptop", 1280, 900, false, "")
		p.screenshot("livedoc-emitters-phone", 390, 844, true, "#em-create-title")
		checkNoHorizontalScroll(t, p)
		p.do("restore viewport", chromedp.EmulateViewport(1280, 900), chromedp.Evaluate[chromedp.Void](`document.getElementById("em-id").value = ""`))
	})

	t.Run("fibonacci next changes the value", func(t *testing.T) {
		p.t = t
		before := evalJS[string](p, `document.getElementById('em-list-status').textContent`)
		p.do("refresh list", chromedp.Click(chromedp.CSS(`#em-filter button[type=submit]`)))
		p.waitJS("list refreshed", `document.getElementById('em-list-status').textContent !== `+strconv.Quote(before))
		const row = `.em-row[data-id="fib"]`
		p.waitJS("fib row with commands", `document.querySelector('`+row+` button[data-command=next]')`)
		out := `document.querySelector('` + row + ` output').textContent`
		p.do("current", chromedp.Click(chromedp.CSS(row+` button[data-command=current]`)))
		p.waitJS("current shown", out+`.startsWith('current: position')`)
		pos := fibPosition(t, evalJS[string](p, out))
		p.do("next", chromedp.Click(chromedp.CSS(row+` button[data-command=next]`)))
		p.waitJS("next shown", out+`.startsWith('next: position')`)
		if next := fibPosition(t, evalJS[string](p, out)); next != pos+1 {
			t.Fatalf("next moved position %d -> %d, want +1", pos, next)
		}
	})

	t.Run("websocket echo", func(t *testing.T) {
		p.t = t
		p.do("streams tab", chromedp.Click(chromedp.CSS(`#tab-streams`)),
			chromedp.SetValue(chromedp.CSS(`#ws-path`), "/echo"),
			chromedp.Click(chromedp.CSS(`#ws-connect`)))
		p.waitJS("socket open", `document.getElementById('ws-state').textContent === 'open'`)
		p.do("send", chromedp.SetValue(chromedp.CSS(`#ws-msg`), "ping-e2e 🚀"), chromedp.Click(chromedp.CSS(`#ws-send`)))
		p.waitJS("echo received", `[...document.querySelectorAll('#ws-log li.recv')].some(li => li.textContent.includes('ping-e2e 🚀'))`)
		p.do("disconnect", chromedp.Click(chromedp.CSS(`#ws-close`)))
		p.waitJS("closed", `document.getElementById('ws-state').textContent === 'closed'`)
	})

	t.Run("plugins panel", func(t *testing.T) {
		p.t = t
		p.do("plugins tab", chromedp.Click(chromedp.CSS(`#tab-plugins`)))
		plugins := itemCount(t, sc.URL("/api/v1/plugins"), nil)
		p.waitJS("every plugin running", fmt.Sprintf(`document.querySelectorAll('#pl-table tbody .pill.running').length === %d`, plugins))
		first := evalJS[string](p, `document.getElementById('pl-status').textContent`)
		p.waitJS("refreshed by itself", `document.getElementById('pl-status').textContent !== `+strconv.Quote(first))
		p.screenshot("livedoc-plugins-laptop", 1280, 900, false, "")
	})

	t.Run("queue console: create, post, claim, delete", func(t *testing.T) {
		p.t = t
		p.do("queues tab", chromedp.Click(chromedp.CSS(`#tab-queues`)))
		p.waitJS("console loaded", `document.getElementById('q-create')`)
		okRows := `[...document.querySelectorAll('#q-log li:not(.gap)')].map(li => li.firstChild.textContent)`
		p.do("create", chromedp.Click(chromedp.CSS(`#q-create`)))
		p.waitJS("created", okRows+`.includes('create')`)
		p.do("post", chromedp.SetValue(chromedp.CSS(`#q-body`), `{"order": 17}`), chromedp.Click(chromedp.CSS(`#q-post`)))
		p.waitJS("posted", okRows+`.includes('post')`)
		p.do("claim", chromedp.Click(chromedp.CSS(`#q-claim`)))
		p.waitJS("claimed the message", `[...document.querySelectorAll('#q-claimed li')].some(li => li.textContent.includes('{"order":17}'))`)
		p.do("delete it", chromedp.Click(chromedp.CSS(`#q-claimed button`)))
		p.waitJS("message deleted", `!document.querySelector('#q-claimed button')`)
		p.do("claim again", chromedp.Click(chromedp.CSS(`#q-claim`)))
		p.waitJS("nothing left", `document.getElementById('q-claimed').textContent.includes('nothing to claim')`)
		p.do("delete queue", chromedp.Click(chromedp.CSS(`#q-delete`)))
		p.waitJS("queue deleted", okRows+`.includes('delete queue')`)
		if bad := evalJS[int](p, `document.querySelectorAll('#q-log li.gap').length`); bad != 0 {
			t.Errorf("%d queue requests failed: %s", bad, evalJS[string](p, `document.getElementById('q-log').textContent`))
		}
		p.screenshot("livedoc-queues-laptop", 1280, 900, false, "")
	})

	// The watch itself notices what it must: a console error and a failed
	// request (taken out again, so only the page's own problems fail).
	t.Run("problem detector", func(t *testing.T) {
		p.t = t
		if p.Requests() == 0 {
			t.Fatal("no requests observed: the network listener is not working")
		}
		p.do("provoke", chromedp.Evaluate[chromedp.Void](`console.error('detector-probe'); fetch('/detector-probe').catch(() => {})`))
		seen := 0 // console.error, the 404 response and its browser log entry
		p.waitFor("probe problems seen", func() bool { seen += p.takeProblems("detector-probe"); return seen >= 3 })
	})
	p.t = t
}

// countOperations counts method+path pairs of the served OpenAPI document.
func countOperations(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, item := range doc.Paths {
		for m := range item {
			switch m {
			case "get", "put", "post", "delete", "patch":
				n++
			}
		}
	}
	return n
}

// fibPosition reads "NAME: position N, value V".
func fibPosition(t *testing.T, s string) int {
	t.Helper()
	_, rest, ok := strings.Cut(s, "position ")
	num, _, ok2 := strings.Cut(rest, ",")
	n, err := strconv.Atoi(num)
	if !ok || !ok2 || err != nil {
		t.Fatalf("cannot read a position from %q", s)
	}
	return n
}

// checkNoHorizontalScroll: the page fits the emulated device's width
// (screen.width), phone widths too. Not window.innerWidth: a phone
// browser zooms out to what the page needs, and innerWidth grows with it.
func checkNoHorizontalScroll(t *testing.T, p *browserPage) {
	t.Helper()
	checkFitsDevice(t, p, evalJS[int](p, `screen.width`))
}

// itemCount is how many items the node lists at url ({"items":[…]}).
func itemCount(t *testing.T, url string, h hdr) int {
	t.Helper()
	var list struct{ Items []json.RawMessage }
	a := send(t, "GET", url, "", h)
	if a.status != 200 {
		t.Fatalf("GET %s: %d %s", url, a.status, a.body)
	}
	a.decode(t, &list)
	if len(list.Items) == 0 {
		t.Fatalf("GET %s: no items", url)
	}
	return len(list.Items)
}
