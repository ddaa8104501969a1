package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// sawRequestWith reports whether the page requested a URL containing
// every one of parts.
func (p *browserPage) sawRequestWith(parts ...string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.urls {
		all := true
		for _, s := range parts {
			all = all && strings.Contains(u, s)
		}
		if all {
			return true
		}
	}
	return false
}

// The Guests tab in real Chromium, on a node with auth on and a files
// guest source in a temporary directory: without a token it says one is
// needed; with it, it lists the guests with source, labels, path and
// state; a guest file the test creates appears, and one it removes goes
// (listed as gone, its emitter stopped), and one whose emitter cannot be
// attached shows why, all from the guests lifecycle stream (shown as
// comings and goings) without a reload; a guest opens to its emitters, and an emitter opens in the stream viewer, which shows a
// line the test writes to that guest's console.
func TestLivedocGuestsInBrowser(t *testing.T) {
	root := t.TempDir()
	vms := filepath.Join(root, "vms")
	console := func(name string) string { return filepath.Join(vms, name, "console.log") }
	addGuest := func(name string) {
		if err := os.MkdirAll(filepath.Dir(console(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeConfig(t, console(name), "boot "+name+"\n")
	}
	addGuest("vm-a")
	cfg := filepath.Join(root, "sidestream.yaml")
	writeConfig(t, cfg, fmt.Sprintf(`log_roots: [%q]
guests:
  sources:
    - {name: vms, type: files, pattern: '%s/{guest}/console.log', labels: {tier: vm}}
  rules:
    - name: console
      match: {source: vms}
      emitters: [{kind: log, config: {source: file, path: '{path}'}}]
`, vms, vms))
	sc := startSidecar(t, t.TempDir(), "--config", cfg, "--auth-token-file", writeTokenFile(t))
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	p.allow4xx("/api/v1/streams/guests/events")
	card := func(key string) string { return `document.querySelector('.gu-card[data-key="` + key + `"]')` }

	p.do("open the guests tab", chromedp.Navigate(sc.URL("/livedoc#guests")), chromedp.EmulateViewport(1400, 900))
	p.waitJS("a token is asked for", `document.getElementById('gu-status').textContent.includes('requires a bearer token (401)')`)
	p.do("use the token", chromedp.SetValue(chromedp.CSS(`#token`), tokAlpha), chromedp.Click(chromedp.CSS(`#auth button[type=submit]`)))
	p.waitJS("vm-a listed, present", card("vms/vm-a")+`?.dataset.state === 'present' && document.getElementById('gu-status').textContent.startsWith('live')`)
	if got := evalJS[string](p, card("vms/vm-a")+`.querySelector('.labels').textContent`); got != "tier=vm" {
		t.Errorf("vm-a's labels show %q, want tier=vm", got)
	}
	if got := evalJS[string](p, card("vms/vm-a")+`.querySelector('.gu-where').textContent`); got != console("vm-a") {
		t.Errorf("vm-a's path shows %q, want %s", got, console("vm-a"))
	}
	if got := evalJS[string](p, card("vms/vm-a")+`.querySelector('.kind').textContent`); got != "vms" {
		t.Errorf("vm-a's source shows %q", got)
	}
	if !p.sawRequestWith("/api/v1/streams/guests/sse?", "access_token="+tokAlpha) {
		t.Errorf("the guests EventSource did not carry the token as access_token")
	}
	p.do("mark the document", chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`))

	// A guest that appears is listed by the lifecycle stream, no reload.
	addGuest("vm-b")
	p.waitJS("vm-b appears", card("vms/vm-b")+`?.dataset.state === 'present'`)
	p.waitJS("its coming listed", `document.querySelector('#gu-events li[data-type="appeared"][data-guest="vm-b"]')`)
	toggle := `.gu-card[data-key="vms/vm-b"] header button`
	if ex := evalJS[string](p, `document.querySelector('`+toggle+`').getAttribute('aria-expanded')`); ex != "false" {
		t.Errorf("vm-b starts expanded (%s)", ex)
	}
	// With the keyboard: the guest's button keeps the focus through the
	// redraw, and further lifecycle events redraw around it.
	p.do("open vm-b with the keyboard", chromedp.Focus(chromedp.CSS(toggle)), chromedp.KeyEvent("\r"))
	emitter := `document.querySelector('.gu-card[data-key="vms/vm-b"] .gu-emitters li[data-id="vm-b.console"]')`
	p.waitJS("vm-b's emitters shown, its log emitter running", `document.querySelector('`+toggle+`').getAttribute('aria-expanded') === 'true' && `+
		card("vms/vm-b")+`.querySelector('.gu-emitters').checkVisibility() && `+emitter+`?.querySelector('.pill').textContent === 'running'`)
	if !evalJS[bool](p, `document.activeElement === document.querySelector('`+toggle+`')`) {
		t.Errorf("the focus left vm-b's button when it opened")
	}

	// A guest whose emitter cannot be attached (its id is taken by an
	// emitter made by hand) shows the failure and why, live.
	if a := send(t, http.MethodPost, sc.URL("/api/v1/emitters"), `{"kind":"time","id":"vm-c.console","config":{"interval":"1s"}}`, bearer(tokAlpha)); a.status != http.StatusCreated {
		t.Fatalf("create vm-c.console by hand: %d %s", a.status, a.body)
	}
	addGuest("vm-c")
	p.waitJS("vm-c appears", card("vms/vm-c")+`?.dataset.state === 'present'`)
	p.waitJS("its failed attach listed", `document.querySelector('#gu-events li[data-type="attach_failed"][data-guest="vm-c"] .gu-error')?.textContent.includes('was not attached to this guest')`)
	p.do("open vm-c", chromedp.Click(chromedp.CSS(`.gu-card[data-key="vms/vm-c"] header button`)))
	p.waitJS("vm-c's emitter failed, with the reason", card("vms/vm-c")+`.querySelector('li[data-id="vm-c.console"] .pill')?.textContent === 'failed' && `+
		card("vms/vm-c")+`.querySelector('li[data-id="vm-c.console"] .gu-error').textContent.includes('was not attached to this guest')`)
	checkAxe(t, p, "guests")
	explorerShots(t, p, "guests", `.gu-card[data-key="vms/vm-b"]`)

	// A guest that goes: listed as gone, its emitter stopped, no reload.
	if err := os.Remove(console("vm-a")); err != nil {
		t.Fatal(err)
	}
	p.waitJS("vm-a gone", card("vms/vm-a")+`?.dataset.state === 'gone' && `+card("vms/vm-a")+`.querySelector('header .pill').textContent === 'gone'`)
	p.waitJS("its going listed", `document.querySelector('#gu-events li[data-type="gone"][data-guest="vm-a"]')`)
	p.waitJS("its emitter stopped", card("vms/vm-a")+`.querySelector('li[data-id="vm-a.console"] .pill')?.textContent === 'stopped'`)
	if !evalJS[bool](p, `window.sameDocument === true`) {
		t.Fatal("the page was reloaded")
	}

	// An emitter opens in the stream viewer, which shows the guest's lines.
	f, err := os.OpenFile(console("vm-b"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "kernel: hello from vm-b")
	f.Close()
	p.do("open vm-b's emitter", chromedp.Click(chromedp.CSS(`.gu-card[data-key="vms/vm-b"] li[data-id="vm-b.console"] button`)))
	p.waitJS("the viewer live on it", `!document.getElementById('panel-viewer').hidden && document.getElementById('vw-stream').value === 'vm-b.console' && document.getElementById('vw-state').textContent === 'live'`)
	p.waitJS("vm-b's line in the viewer", `[...document.querySelectorAll('#vw-log li.vw-row')].some((li) => li.textContent.includes('hello from vm-b'))`)
	if !evalJS[bool](p, `location.hash === '#viewer' && window.sameDocument === true`) {
		t.Errorf("the viewer was not opened in the same page")
	}
}
