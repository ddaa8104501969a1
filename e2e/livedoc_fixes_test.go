package e2e

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// Widths the livedoc tests look at: a laptop and a phone (390 CSS px,
// mobile emulation: the page may zoom out, so widths are compared with
// this number, not with window.innerWidth, which grows with the zoom).
const (
	laptopWidth = 1400
	phoneWidth  = 390
)

// axeSource is axe-core, vendored for this test only (testdata/axe-core).
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// view sets a laptop or phone viewport and the light or dark colour scheme.
func (p *browserPage) view(width int64, dark bool) {
	p.t.Helper()
	var opts []chromedp.EmulateViewportOption
	height := int64(900)
	if width < 700 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		height = 844
	}
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	p.do(fmt.Sprintf("view %dpx %s", width, scheme), chromedp.EmulateViewport(width, height, opts...),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			return err
		}))
}

// shoot saves name-{laptop,phone}-{light,dark}.png under e2e/artifacts
// (the directory the other livedoc screenshots use), each with the element
// scrollTo in view, and goes back to the light laptop view.
func (p *browserPage) shoot(name, scrollTo string) {
	p.t.Helper()
	dir, err := filepath.Abs("artifacts")
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	for _, w := range []struct {
		name  string
		width int64
	}{{"laptop", laptopWidth}, {"phone", phoneWidth}} {
		for _, dark := range []bool{false, true} {
			p.view(w.width, dark)
			if scrollTo != "" {
				p.do("scroll to "+scrollTo, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+strconv.Quote(scrollTo)+`).scrollIntoView({block: 'center'})`))
			}
			buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
			if err != nil {
				p.t.Fatalf("screenshot %s: %v", name, err)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", name, w.name, map[bool]string{false: "light", true: "dark"}[dark]))
			if err := os.WriteFile(file, buf, 0o644); err != nil {
				p.t.Fatal(err)
			}
		}
	}
	p.t.Logf("screenshots: %s/%s-*.png", dir, name)
	p.view(laptopWidth, false)
}

// checkFitsDevice: at a phone's width the page neither scrolls sideways
// nor makes the browser zoom out (the layout viewport would grow).
func checkFitsDevice(t *testing.T, p *browserPage, width int) {
	t.Helper()
	w := evalJS[[]int](p, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if w[0] > width+1 || w[1] > width+1 {
		t.Errorf("page is %dpx wide (layout viewport %dpx) on a %dpx-wide device", w[0], w[1], width)
	}
}

// saysAboveZero: a rate error worded as a sentence, by the node ("must be
// > 0") or by the page from the schema keyword ("must be greater than 0").
func saysAboveZero(s string) bool {
	return strings.Contains(s, "must be > 0") || strings.Contains(s, "greater than 0")
}

// heldRequest is a request paused by holdRequests.
type heldRequest struct {
	id  fetch.RequestID
	url string
}

// holdRequests pauses every later request whose URL matches pattern until
// releaseRequests: the page's state while an answer is pending can be
// looked at without depending on timing.
func (p *browserPage) holdRequests(pattern string) {
	p.t.Helper()
	p.do("hold "+pattern, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}})
		return err
	}))
}

// heldURLs are the URLs of the requests held so far.
func (p *browserPage) heldURLs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, h := range p.held {
		out = append(out, h.url)
	}
	return out
}

// releaseRequests stops holding and lets every held request go on.
func (p *browserPage) releaseRequests() {
	p.t.Helper()
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.mu.Unlock()
	p.do("release held requests", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, h := range held {
			if _, err := cdp.Call(ctx, t, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: h.id}); err != nil {
				return err
			}
		}
		_, err := cdp.Call(ctx, t, fetch.Disable, cdp.Empty{})
		return err
	}))
}

// The livedoc fixes in real Chromium against the real binary, at a laptop
// and a phone width, light and dark: the queue list, message text at phone
// width, a reference that fits a phone, failures that name their cause,
// the WebSocket console, protected shared emitters, readable server
// errors, Back between tabs, loading and empty states, and an axe-core
// accessibility audit without serious violations.
func TestLivedocFixesInBrowser(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	const (
		qRows  = `[...document.querySelectorAll('#q-log li')]`
		wsText = `document.getElementById('ws-log').textContent`
	)
	p.do("open livedoc", chromedp.Navigate(sc.URL("/livedoc#queues")))
	p.view(laptopWidth, false)

	t.Run("list queues asks for a page size the node serves", func(t *testing.T) {
		p.t = t
		p.waitJS("queue console", `document.getElementById('q-create')`)
		p.do("create, then list", chromedp.Click(chromedp.CSS(`#q-create`)))
		p.waitJS("created", qRows+`.some(li => li.firstChild.textContent === 'create')`)
		p.do("list", chromedp.Click(chromedp.CSS(`#q-list`)))
		p.waitJS("listed", qRows+`.some(li => li.firstChild.textContent === 'list')`)
		row := evalJS[string](p, qRows+`.find(li => li.firstChild.textContent === 'list').textContent`)
		if bad := evalJS[int](p, `document.querySelectorAll('#q-log li.gap').length`); bad != 0 || !strings.Contains(row, "livedoc-demo") {
			t.Errorf("list queues failed (%d failed rows): %s", bad, row)
		}
	})

	t.Run("phone: socket frames and queue requests show their text", func(t *testing.T) {
		p.t = t
		visible := func(list, want string) string {
			return `(() => { const li = [...document.querySelectorAll('` + list + ` li')].filter(li => li.textContent.includes(` +
				strconv.Quote(want) + `)).pop(); const s = li && li.lastElementChild;
				return !!s && s.textContent.includes(` + strconv.Quote(want) + `) && s.getBoundingClientRect().width > 50 && s.getBoundingClientRect().height > 0; })()`
		}
		p.view(phoneWidth, false)
		p.do("post a message", chromedp.SetValue(chromedp.CSS(`#q-body`), `{"phone": "visible-queue-text"}`), chromedp.Click(chromedp.CSS(`#q-post`)))
		p.waitJS("posted", qRows+`.some(li => li.firstChild.textContent === 'post')`)
		p.do("claim it", chromedp.Click(chromedp.CSS(`#q-claim`)))
		p.waitJS("claim shown in the log", qRows+`.some(li => li.firstChild.textContent === 'claim')`)
		if !evalJS[bool](p, visible("#q-log", "visible-queue-text")) {
			t.Errorf("at %dpx the queue request log hides the answer text", phoneWidth)
		}
		p.shoot("livedoc-queue-log", "#q-log")

		p.view(phoneWidth, false)
		p.do("echo socket", chromedp.Click(chromedp.CSS(`#tab-streams`)),
			chromedp.SetValue(chromedp.CSS(`#ws-path`), "/echo"), chromedp.Click(chromedp.CSS(`#ws-connect`)))
		p.waitJS("socket open", `document.getElementById('ws-state').textContent === 'open'`)
		p.do("send", chromedp.SetValue(chromedp.CSS(`#ws-msg`), "visible-frame-text"), chromedp.Click(chromedp.CSS(`#ws-send`)))
		p.waitJS("echo received", `document.querySelector('#ws-log li.recv')`)
		if !evalJS[bool](p, visible("#ws-log", "visible-frame-text")) {
			t.Errorf("at %dpx the WebSocket console hides the frame text", phoneWidth)
		}
		p.shoot("livedoc-ws-log", "#ws-log")
		p.do("disconnect", chromedp.Click(chromedp.CSS(`#ws-close`)))
		p.waitJS("closed", `document.getElementById('ws-state').textContent === 'closed'`)
	})

	t.Run("phone: the reference fits the device width", func(t *testing.T) {
		p.t = t
		p.do("reference", chromedp.Click(chromedp.CSS(`#tab-reference`)))
		p.waitJS("reference rendered", `document.querySelectorAll('details.op').length > 0`)
		p.view(phoneWidth, false)
		checkFitsDevice(t, p, phoneWidth)
		// checkNoHorizontalScroll (the other livedoc tests) reads the
		// device width from screen.width: it must be the emulated one.
		if sw := evalJS[int](p, `screen.width`); sw != phoneWidth {
			t.Errorf("screen.width %d under a %dpx phone emulation", sw, phoneWidth)
		}
		p.shoot("livedoc-reference-summary", `details.op[data-search^="put /v2/queues/{queue} "]`)
	})

	t.Run("failures say what happened", func(t *testing.T) {
		p.t = t
		p.allow4xx("/api/v1/streams/no-such-stream/sse")
		p.allow4xx("/api/v1/streams/no-such-stream/ws")
		// Showing the tab refreshes the emitter list: emptied first, it is
		// refilled once that refresh is done and cannot drop the option below.
		p.do("streams tab", chromedp.Evaluate[chromedp.Void](`document.getElementById('sse-emitter').replaceChildren()`),
			chromedp.Click(chromedp.CSS(`#tab-streams`)))
		p.waitJS("emitters listed", `document.querySelector('#sse-emitter option[value="fib"]')`)
		p.do("an unknown emitter", chromedp.Evaluate[chromedp.Void](`(() => {
			const s = document.getElementById('sse-source'); s.value = 'emitter'; s.dispatchEvent(new Event('change'));
			const e = document.getElementById('sse-emitter'); e.append(new Option('no-such-stream', 'no-such-stream')); e.value = 'no-such-stream';
		})()`), chromedp.Click(chromedp.CSS(`#sse-connect`)))
		p.waitJS("SSE refusal explained", `document.getElementById('sse-state').textContent.includes('404')`)
		if st := evalJS[string](p, `document.getElementById('sse-state').textContent`); strings.Contains(st, "token") || !strings.Contains(st, "not found") {
			t.Errorf("SSE 404 reported as %q, want the 404 and no talk of a token", st)
		}
		p.do("an unknown stream socket", chromedp.SetValue(chromedp.CSS(`#ws-path`), "/api/v1/streams/no-such-stream/ws"),
			chromedp.Click(chromedp.CSS(`#ws-connect`)))
		p.waitJS("socket refusal explained", wsText+`.includes('404')`)
		if txt := evalJS[string](p, wsText); strings.Contains(txt, "token") || !strings.Contains(txt, "not found") {
			t.Errorf("WebSocket 404 reported as %q, want the 404 and no talk of a token", txt)
		}
		p.waitFor("the browser's log of the refused handshake", func() bool {
			return p.takeProblems("no-such-stream/ws' failed") > 0
		})
		p.shoot("livedoc-stream-failures", "#ws-log")
		p.do("clear", chromedp.Click(chromedp.CSS(`#ws-clear`)))
	})

	t.Run("websocket console: path locked while open, stream socket survives its default message", func(t *testing.T) {
		p.t = t
		p.do("magic socket", chromedp.SetValue(chromedp.CSS(`#ws-path`), "/api/v1/streams/magic/ws"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('ws-path').dispatchEvent(new Event('input'))`),
			chromedp.Click(chromedp.CSS(`#ws-connect`)))
		p.waitJS("socket open", `document.getElementById('ws-state').textContent === 'open'`)
		if !evalJS[bool](p, `document.getElementById('ws-path').disabled || document.getElementById('ws-path').readOnly`) {
			t.Errorf("the path can be edited while its socket is open")
		}
		msg := evalJS[string](p, `document.getElementById('ws-msg').value`)
		var frame struct{ Resume *uint64 }
		if err := json.Unmarshal([]byte(msg), &frame); err != nil || frame.Resume == nil {
			t.Errorf("default message for a stream socket %q is not a {\"resume\": seq} frame", msg)
		}
		p.do("send the default", chromedp.Click(chromedp.CSS(`#ws-send`)))
		p.waitJS("events replayed from the start", `[...document.querySelectorAll('#ws-log li.recv')].some(li => li.textContent.includes('"seq":1,'))`)
		p.do("send text a stream socket refuses", chromedp.SetValue(chromedp.CSS(`#ws-msg`), "hello sidestream"), chromedp.Click(chromedp.CSS(`#ws-send`)))
		p.waitJS("refused in the page", wsText+`.includes('not sent')`)
		if st := evalJS[string](p, `document.getElementById('ws-state').textContent`); st != "open" {
			t.Errorf("socket state %q after a refused message, want open", st)
		}
		p.shoot("livedoc-ws-stream", "#ws-log")
		p.do("disconnect", chromedp.Click(chromedp.CSS(`#ws-close`)))
		p.waitJS("closed and the path editable again", `document.getElementById('ws-state').textContent === 'closed' && !document.getElementById('ws-path').disabled && !document.getElementById('ws-path').readOnly`)
	})

	t.Run("shared emitters cannot be deleted", func(t *testing.T) {
		p.t = t
		if code := do(t, http.MethodPut, sc.URL("/log"), `{"rate":1}`, nil); code != http.StatusCreated {
			t.Fatalf("PUT /log: %d", code)
		}
		p.do("emitters tab", chromedp.Click(chromedp.CSS(`#tab-emitters`)))
		p.waitJS("listed", `document.querySelector('.em-row[data-id="magic"]') && document.querySelector('.em-row[data-id^="em-"]')`)
		for _, id := range []string{"magic", "time", "fib"} {
			row := `document.querySelector('.em-row[data-id="` + id + `"]')`
			if evalJS[bool](p, row+`.querySelector('button.danger:not([disabled])') !== null`) {
				t.Errorf("shared emitter %s offers an enabled Delete", id)
			}
			if !evalJS[bool](p, row+`.textContent.includes('shared')`) {
				t.Errorf("shared emitter %s not marked shared", id)
			}
		}
		if !evalJS[bool](p, `!!document.querySelector('.em-row[data-id^="em-"] button.danger')`) {
			t.Errorf("a created emitter has no Delete")
		}
		a := send(t, http.MethodDelete, sc.URL("/api/v1/emitters/magic"), "", nil)
		if a.status != http.StatusConflict || a.errorCode() != "shared_emitter" {
			t.Errorf("DELETE magic: %d %s, want 409 shared_emitter", a.status, a.body)
		}
		p.shoot("livedoc-emitters-shared", `.em-row[data-id="magic"]`)
	})

	t.Run("server errors are readable", func(t *testing.T) {
		p.t = t
		p.allow4xx("/api/v1/emitters")
		p.do("choose magic", chromedp.SetValue(chromedp.CSS(`#em-kind`), "magic"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('em-kind').dispatchEvent(new Event('change'))`))
		p.waitJS("magic form", `document.getElementById('cfg-rate')`)
		p.do("rate -5", chromedp.SetValue(chromedp.CSS(`#cfg-rate`), "-5"), chromedp.Click(chromedp.CSS(`#em-submit`)))
		field := `document.querySelector('#em-config [data-field=rate] .field-error').textContent`
		p.waitJS("rate error shown", field+`.length > 0`)
		if txt := evalJS[string](p, field); strings.Contains(txt, "exclusiveMinimum") || !saysAboveZero(txt) {
			t.Errorf("rate error %q, want a sentence (greater than 0), not the schema keyword", txt)
		}
		p.shoot("livedoc-emitters-readable-error", "#em-create-summary")
		p.do("reset rate", chromedp.Evaluate[chromedp.Void](`document.getElementById('cfg-rate').value = ''`))

		// The reference's Try it shows the error body as a sentence with
		// its fields above the raw answer.
		p.do("reference", chromedp.Click(chromedp.CSS(`#tab-reference`)))
		op := `details.op[data-search^="post /api/v1/emitters "]`
		p.do("bad body", chromedp.Evaluate[chromedp.Void](`(() => { const d = document.querySelector('`+op+`'); d.open = true;
			d.querySelector('textarea').value = '{"kind": "magic", "config": {"rate": -5}}'; })()`),
			chromedp.Click(chromedp.CSS(op+` button[type=submit]`)))
		p.waitJS("error explained", `document.querySelector('`+op+` .result.bad .api-error')`)
		if txt := evalJS[string](p, `document.querySelector('`+op+` .result.bad .api-error').textContent`); !strings.Contains(txt, "rate") || !saysAboveZero(txt) || strings.Contains(txt, "exclusiveMinimum") {
			t.Errorf("Try it error %q, want the field and a sentence", txt)
		}
	})

	t.Run("back goes to the previous tab", func(t *testing.T) {
		p.t = t
		p.do("streams, then plugins", chromedp.Click(chromedp.CSS(`#tab-streams`)), chromedp.Click(chromedp.CSS(`#tab-plugins`)))
		p.waitJS("plugins shown", `!document.getElementById('panel-plugins').hidden`)
		p.do("back", chromedp.NavigateBack())
		p.waitJS("streams shown again", `!document.getElementById('panel-streams').hidden && location.hash === '#streams'`)
		if path := evalJS[string](p, `location.pathname`); path != "/livedoc" {
			t.Errorf("Back left the page for %q", path)
		}
		p.do("forward", chromedp.NavigateForward())
		p.waitJS("plugins shown again", `!document.getElementById('panel-plugins').hidden`)
	})

	t.Run("loading and empty states", func(t *testing.T) {
		p.t = t
		p.holdRequests("*/api/v1/*")
		p.do("load the page again on emitters", chromedp.Navigate(sc.URL("/livedoc?again#emitters")))
		p.waitFor("kinds and emitters requested", func() bool {
			u := strings.Join(p.heldURLs(), " ")
			return strings.Contains(u, "/api/v1/kinds") && strings.Contains(u, "/api/v1/emitters")
		})
		p.waitJS("loading shown", `document.getElementById('em-list-status').textContent.includes('Loading')`)
		if !evalJS[bool](p, `document.getElementById('em-submit').disabled`) {
			t.Errorf("Create is enabled before the kinds are loaded (kinds: %q)", evalJS[string](p, `document.getElementById('em-kind').textContent`))
		}
		p.shoot("livedoc-emitters-loading", "#em-list-title")
		p.releaseRequests()
		p.waitJS("kinds loaded, Create enabled", `document.querySelector('#em-kind option[value=log]') && !document.getElementById('em-submit').disabled`)
		p.do("filter for nobody", chromedp.SetValue(chromedp.CSS(`#em-guest-filter`), "nobody-here"),
			chromedp.Click(chromedp.CSS(`#em-filter button[type=submit]`)))
		p.waitJS("empty state", `document.getElementById('em-list').textContent.includes('No emitters')`)
		p.shoot("livedoc-emitters-empty", "#em-list-title")
		p.do("clear the filter", chromedp.Evaluate[chromedp.Void](`document.getElementById("em-guest-filter").value = ""`))
	})

	p.t = t
}

// The page notices a node going away and coming back: the health line
// says it is down, the WebSocket console reconnects by itself and the
// shown stream keeps going, with the server really stopped and restarted
// on the same port and data.
func TestLivedocFollowsRestartInBrowser(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		// Refused connections while the node is down are expected; the
		// page's own errors are not.
		for _, pr := range p.Problems() {
			if strings.HasPrefix(pr, "uncaught") || strings.HasPrefix(pr, "console.") {
				t.Errorf("page problem: %s", pr)
			}
		}
	})
	const health = `document.getElementById('health')`
	p.do("open streams", chromedp.Navigate(sc.URL("/livedoc#streams")))
	p.view(laptopWidth, false)
	p.waitJS("ready", health+`.textContent.includes('is ready')`)
	p.do("echo socket", chromedp.SetValue(chromedp.CSS(`#ws-path`), "/echo"), chromedp.Click(chromedp.CSS(`#ws-connect`)))
	p.waitJS("socket open", `document.getElementById('ws-state').textContent === 'open'`)

	if code := sc.Stop(t); code != 0 {
		t.Fatalf("SIGTERM exit code %d", code)
	}
	p.waitJS("health says down", health+`.classList.contains('bad') && !`+health+`.textContent.includes('is ready')`)
	p.waitJS("socket reconnecting", `document.getElementById('ws-state').textContent.startsWith('reconnecting')`)
	p.shoot("livedoc-node-down", "#ws-log")

	startSidecar(t, dir, "--listen", sc.addr) // stopped by its cleanup
	p.waitJS("health ready again", health+`.textContent.includes('is ready') && `+health+`.classList.contains('ok')`)
	p.waitJS("socket open again", `document.getElementById('ws-state').textContent === 'open'`)
	p.do("send", chromedp.SetValue(chromedp.CSS(`#ws-msg`), "after-restart"), chromedp.Click(chromedp.CSS(`#ws-send`)))
	p.waitJS("echo after the restart", `[...document.querySelectorAll('#ws-log li.recv')].some(li => li.textContent.includes('after-restart'))`)
	if log := evalJS[string](p, `document.getElementById('ws-log').textContent`); !strings.Contains(log, "going away") && !strings.Contains(log, "connection lost") ||
		!strings.Contains(log, "cannot reach") {
		t.Errorf("the console did not say why the socket closed and could not reopen: %s", log)
	}
	p.shoot("livedoc-node-back", "#ws-log")

}

// axe-core (vendored, injected by the test only) finds no serious or
// critical accessibility violation on any tab, light or dark.
func TestLivedocAccessibilityInBrowser(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	// One browser per scheme: a session has a 2-minute hang guard and an
	// audit of every tab takes a while on a loaded machine.
	for _, dark := range []bool{false, true} {
		t.Run(map[bool]string{false: "light", true: "dark"}[dark], func(t *testing.T) {
			t.Parallel()
			auditTabs(t, sc, dark)
		})
	}
}

// auditTabs runs axe-core on every tab in one colour scheme.
func auditTabs(t *testing.T, sc *sidecar, dark bool) {
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.do("open livedoc", chromedp.Navigate(sc.URL("/livedoc")))
	p.do("load axe-core", chromedp.Evaluate[chromedp.Void](axeSource))
	p.view(laptopWidth, dark)
	for _, tab := range []string{"reference", "guests", "streams", "emitters", "plugins", "queues", "cluster"} {
		p.do(tab, chromedp.Click(chromedp.CSS(`#tab-`+tab)))
		p.waitJS(tab+" loaded", `!document.getElementById('panel-`+tab+`').hidden && !document.querySelector('[aria-busy="true"]')`)
		start := time.Now()
		a := axeAudit(t, p, tab)
		// An audit that checked nothing would pass too.
		if a.Passes < 10 {
			t.Fatalf("%s: axe passed only %d rules: did it run on the page?", tab, a.Passes)
		}
		for _, v := range a.Violations {
			t.Errorf("%s: axe %s %s: %s at %v", tab, v.Impact, v.ID, v.Help, v.Nodes)
		}
		t.Logf("%s: axe passed %d rules in %v", tab, a.Passes, time.Since(start).Round(time.Millisecond))
	}
	// The audit reports what it must: a button without a name is critical.
	p.do("an unnamed button", chromedp.Evaluate[chromedp.Void](`document.getElementById('panel-cluster').append(Object.assign(document.createElement('button'), {id: 'axe-probe'}))`))
	if a := axeAudit(t, p, "cluster"); !slices.ContainsFunc(a.Violations, func(v axeViolation) bool { return v.ID == "button-name" }) {
		t.Errorf("axe did not report an unnamed button: %+v", a.Violations)
	}
}

type axeViolation struct {
	ID, Impact, Help string
	Nodes            []string
}

// axeAudit runs axe-core on the page's frame and the shown panel (hidden
// panels are not audited anyway; leaving them out keeps each run short)
// and returns the serious and critical violations.
func axeAudit(t *testing.T, p *browserPage, tab string) (a struct {
	Passes     int
	Violations []axeViolation
}) {
	t.Helper()
	res, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`axe.run({include: [['.top'], ['.tabs'], ['#panel-`+tab+`'], ['.foot']]},
		{resultTypes: ['violations']}).then(r => JSON.stringify({passes: r.passes.length,
		violations: r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
		 .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe on %s: %v", tab, err)
	}
	if err := json.Unmarshal([]byte(res), &a); err != nil {
		t.Fatalf("axe result %q: %v", res, err)
	}
	return a
}
