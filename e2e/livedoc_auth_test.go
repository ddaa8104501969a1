package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The livedoc page against a node with auth on, in real Chromium: the
// public page loads without a token, every protected panel says that a
// token is needed (and the token field says so too) instead of failing
// silently or throwing, a wrong token is reported as refused, and once the
// right token is entered the emitters list, a live EventSource stream
// (token as access_token), the WebSocket echo, the plugins and the queue
// console all work. Only the provoked 401s are allowed; any other console
// error, exception or failed request fails the test.
func TestLivedocAuthInBrowser(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir(), "--auth-token-file", writeTokenFile(t))
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	for _, path := range []string{"/api/v1/emitters", "/api/v1/kinds", "/api/v1/plugins",
		"/api/v1/streams/magic/sse", "/echo", "/v2/queues/livedoc-demo", "/api/v1/whoami"} {
		p.allow4xx(path)
	}
	const (
		emStatus   = `document.getElementById('em-list-status').textContent`
		tokenState = `document.getElementById('token-state')`
		okQueue    = `[...document.querySelectorAll('#q-log li:not(.gap)')].map(li => li.firstChild.textContent)`
	)

	t.Run("without a token the panels say one is needed", func(t *testing.T) {
		p.t = t
		p.do("open emitters", chromedp.Navigate(sc.URL("/livedoc#emitters")))
		p.waitJS("health from the public readyz", `document.getElementById('health').textContent.includes('is ready')`)
		p.waitJS("emitters list asks for a token", emStatus+`.includes('requires a bearer token (401)')`)
		p.waitJS("kinds ask for a token", `document.getElementById('em-kind-desc').textContent.includes('requires a bearer token')`)
		p.waitJS("the token field says so", `!`+tokenState+`.hidden && `+tokenState+`.textContent.includes('requires a bearer token')`)
		if inv := evalJS[string](p, `document.getElementById('token').getAttribute('aria-invalid') || ''`); inv != "true" {
			t.Errorf("token field aria-invalid=%q, want true while a token is needed", inv)
		}
		if n := evalJS[int](p, `document.querySelectorAll('.em-row').length`); n != 0 {
			t.Errorf("%d emitters listed without a token", n)
		}
		p.do("plugins tab", chromedp.Click(chromedp.CSS(`#tab-plugins`)))
		p.waitJS("plugins ask for a token", `document.getElementById('pl-status').textContent.includes('requires a bearer token')`)

		p.do("streams tab: magic", chromedp.Click(chromedp.CSS(`#tab-streams`)),
			chromedp.SetValue(chromedp.CSS(`#sse-source`), "magic"), chromedp.Click(chromedp.CSS(`#sse-connect`)))
		p.waitJS("EventSource refused", `document.getElementById('sse-state').textContent.includes('requires a bearer token (401)')`)
		p.do("echo socket", chromedp.SetValue(chromedp.CSS(`#ws-path`), "/echo"), chromedp.Click(chromedp.CSS(`#ws-connect`)))
		p.waitJS("WebSocket refused", `document.getElementById('ws-log').textContent.includes('not connected: this node requires a bearer token (401)')`)
		// Chromium logs a refused handshake against the script that opened
		// it, not the socket's path: this one 401 is the provoked one.
		p.waitFor("the browser's log of the refused handshake", func() bool {
			return p.takeProblems("WebSocket connection to 'ws://"+sc.addr+"/echo' failed: HTTP Authentication failed") > 0
		})

		p.do("queues tab", chromedp.Click(chromedp.CSS(`#tab-queues`)))
		p.waitJS("queue console", `document.getElementById('q-create')`)
		p.do("create a queue", chromedp.Click(chromedp.CSS(`#q-create`)))
		p.waitJS("queue request refused with the reason", `[...document.querySelectorAll('#q-log li.gap')].some(li => li.textContent.includes('401') && li.textContent.includes('requires a bearer token'))`)
		p.screenshot("livedoc-auth-needed-laptop", 1280, 900, false, "")
	})

	t.Run("a wrong token is reported as refused", func(t *testing.T) {
		p.t = t
		p.do("use a wrong token", chromedp.Click(chromedp.CSS(`#tab-emitters`)),
			chromedp.SetValue(chromedp.CSS(`#token`), tokWrong), chromedp.Click(chromedp.CSS(`#auth button[type=submit]`)))
		p.waitJS("emitters list says refused", emStatus+`.includes('refused this bearer token')`)
		p.waitJS("the token field says refused", `!`+tokenState+`.hidden && `+tokenState+`.textContent.includes('refused this bearer token')`)
	})

	t.Run("with the token everything works", func(t *testing.T) {
		p.t = t
		p.do("use alpha's token", chromedp.SetValue(chromedp.CSS(`#token`), tokAlpha), chromedp.Click(chromedp.CSS(`#auth button[type=submit]`)))
		p.waitJS("the shown panel reloads: emitters listed", `[...document.querySelectorAll('.em-row')].map(r => r.dataset.id).includes('magic')`)
		if st := evalJS[string](p, emStatus); !strings.Contains(st, "emitters") || strings.Contains(st, "401") {
			t.Errorf("emitters status %q after entering the token", st)
		}
		if !evalJS[bool](p, tokenState+`.hidden && !document.getElementById('token').hasAttribute('aria-invalid')`) {
			t.Errorf("the token field still reports a problem: %q", evalJS[string](p, tokenState+`.textContent`))
		}
		p.waitJS("kinds loaded now", `document.querySelector('#em-kind option[value=log]')`)
		p.waitJS("fib commands listed", `document.querySelector('.em-row[data-id="fib"] button[data-command=next]')`)
		p.do("fib next", chromedp.Click(chromedp.CSS(`.em-row[data-id="fib"] button[data-command=next]`)))
		p.waitJS("command answered", `document.querySelector('.em-row[data-id="fib"] output').textContent.startsWith('next: position')`)

		p.do("streams tab: magic", chromedp.Click(chromedp.CSS(`#tab-streams`)),
			chromedp.SetValue(chromedp.CSS(`#sse-source`), "magic"), chromedp.Click(chromedp.CSS(`#sse-connect`)))
		p.waitJS("magic events streaming in", `document.getElementById('sse-state').textContent === 'open' && document.querySelectorAll('#sse-log li').length >= 2`)
		if typ := evalJS[string](p, `document.querySelector('#sse-log li span:nth-child(2)').textContent`); typ != "message" {
			t.Errorf("first event type %q, want message (onmessage)", typ)
		}
		if !p.sawRequest("/api/v1/streams/magic/sse?access_token=" + tokAlpha) {
			t.Errorf("the EventSource did not carry the token as access_token")
		}
		p.do("stop the stream", chromedp.Click(chromedp.CSS(`#sse-stop`)))

		p.do("echo socket", chromedp.SetValue(chromedp.CSS(`#ws-path`), "/echo"), chromedp.Click(chromedp.CSS(`#ws-connect`)))
		p.waitJS("socket open", `document.getElementById('ws-state').textContent === 'open'`)
		p.do("send", chromedp.SetValue(chromedp.CSS(`#ws-msg`), "authed-echo ✓"), chromedp.Click(chromedp.CSS(`#ws-send`)))
		p.waitJS("echo received", `[...document.querySelectorAll('#ws-log li.recv')].some(li => li.textContent.includes('authed-echo ✓'))`)
		p.do("disconnect", chromedp.Click(chromedp.CSS(`#ws-close`)))
		p.waitJS("closed", `document.getElementById('ws-state').textContent === 'closed'`)

		p.do("plugins tab", chromedp.Click(chromedp.CSS(`#tab-plugins`)))
		plugins := itemCount(t, sc.URL("/api/v1/plugins"), bearer(tokAlpha))
		p.waitJS("plugins listed", fmt.Sprintf(`document.querySelectorAll('#pl-table tbody .pill.running').length === %d`, plugins))

		// The queue console's project follows the token: its tenant.
		p.do("queues tab", chromedp.Click(chromedp.CSS(`#tab-queues`)))
		p.waitJS("project is the token's tenant", `document.getElementById('q-project').value === 'alpha'`)
		p.do("create", chromedp.Click(chromedp.CSS(`#q-create`)))
		p.waitJS("queue created", okQueue+`.includes('create')`)
		p.do("post", chromedp.SetValue(chromedp.CSS(`#q-body`), `{"tenant": "alpha"}`), chromedp.Click(chromedp.CSS(`#q-post`)))
		p.waitJS("posted", okQueue+`.includes('post')`)
		p.screenshot("livedoc-auth-ok-laptop", 1280, 900, false, "")
	})
	p.t = t
}

// sawRequest reports whether the page requested a URL containing s.
func (p *browserPage) sawRequest(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.urls {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}
