package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserPage is one headless Chromium tab that records everything that
// goes wrong in the page: console errors and warnings, uncaught exceptions,
// failed or 4xx/5xx requests, and any request to another host than the
// sidecar's.
type browserPage struct {
	t    *testing.T
	ctx  context.Context
	host string // host:port every request must go to

	mu       sync.Mutex
	problems []string
	allowed  map[string]bool // paths whose 4xx answers the test provokes
	urls     map[network.RequestID]string
	requests int
	held     []heldRequest // requests paused by Fetch interception (holdRequests)
}

// openBrowser starts Chromium with a fresh profile. Without Chromium it
// skips, or fails under CI=true (requireChromium).
func openBrowser(t *testing.T, host string) *browserPage {
	t.Helper()
	chromium := requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.WindowSize(1280, 900),
	)
	// Hang guard for the whole browser session (the browser lives as long
	// as the context of its first Run).
	base, cancelBase := context.WithTimeout(context.Background(), 4*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	p := &browserPage{t: t, host: host, allowed: map[string]bool{}, urls: map[network.RequestID]string{}}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(p.onEvent))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelBase()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	p.ctx = ctx
	return p
}

// allow4xx lets answers 400-499 to path happen (a test that provokes them
// checks the page shows them).
func (p *browserPage) allow4xx(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed[path] = true
}

func (p *browserPage) problem(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// isAllowed reports whether raw is a provoked 4xx (p.mu held).
func (p *browserPage) isAllowed(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && p.allowed[u.Path]
}

// onEvent runs on chromedp's read loop: it only records.
func (p *browserPage) onEvent(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if t := string(ev.Type); t == "error" || t == "warning" || t == "assert" {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			p.problem("console.%s: %s", t, strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		p.problem("uncaught exception: %s (%s:%d)", msg, d.URL, d.LineNumber)
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError && e.Level != log.EntryLevelWarning {
			return
		}
		p.mu.Lock()
		ok := e.Source == "network" && p.isAllowed(e.URL)
		p.mu.Unlock()
		if !ok {
			p.problem("browser log %s/%s: %s %s", e.Source, e.Level, e.Text, e.URL)
		}
	case *network.EventRequestWillBeSent:
		p.checkHost(ev.Request.URL)
		p.mu.Lock()
		p.urls[ev.RequestID] = ev.Request.URL
		p.requests++
		p.mu.Unlock()
	case *fetch.EventRequestPaused:
		p.mu.Lock()
		p.held = append(p.held, heldRequest{id: ev.RequestID, url: ev.Request.URL})
		p.mu.Unlock()
	case *network.EventWebSocketCreated:
		p.checkHost(ev.URL)
	case *network.EventResponseReceived:
		if ev.Response.Status < 400 {
			return
		}
		p.mu.Lock()
		ok := ev.Response.Status < 500 && p.isAllowed(ev.Response.URL)
		p.mu.Unlock()
		if !ok {
			p.problem("HTTP %d for %s", ev.Response.Status, ev.Response.URL)
		}
	case *network.EventLoadingFailed:
		// Canceled: the page itself ended it (EventSource.close, a stream
		// read cut by the page); everything else is a failed request.
		if ev.Canceled {
			return
		}
		p.mu.Lock()
		u := p.urls[ev.RequestID]
		p.mu.Unlock()
		p.problem("request failed: %s %s", ev.ErrorText, u)
	}
}

// checkHost records a request that would leave the node.
func (p *browserPage) checkHost(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		p.problem("unparseable request URL %q", raw)
		return
	}
	if u.Scheme == "data" || u.Scheme == "blob" {
		return
	}
	if u.Host != p.host {
		p.problem("request leaves the node: %s", raw)
	}
}

// Problems returns what went wrong so far.
func (p *browserPage) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// takeProblems removes the problems mentioning s and counts them.
func (p *browserPage) takeProblems(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept, n := p.problems[:0], 0
	for _, pr := range p.problems {
		if strings.Contains(pr, s) {
			n++
			continue
		}
		kept = append(kept, pr)
	}
	p.problems = kept
	return n
}

// waitFor polls cond on the Go side (hang guard: 20 s).
func (p *browserPage) waitFor(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: gave up after 20s; problems: %v", what, p.Problems())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Requests counts the requests the page sent.
func (p *browserPage) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// do runs actions, failing the test with what step names.
func (p *browserPage) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\nproblems so far: %v", step, err, p.Problems())
	}
}

// eval evaluates expr in the page.
func evalJS[T any](p *browserPage, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is truthy in the page (hang guard: 20 s).
func (p *browserPage) waitJS(what, expr string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\nproblems so far: %v", what, expr, err, p.Problems())
	}
}

// tryIt opens the reference entry whose search key starts with key
// ("get /healthz") and presses its Try it button.
func (p *browserPage) tryIt(key string) {
	p.t.Helper()
	op := `details.op[data-search^="` + key + ` "]`
	p.do("try "+key,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('`+op+`').open = true`),
		chromedp.Click(chromedp.CSS(op+` button[type=submit]`)))
}

// screenshot saves a PNG under e2e/artifacts/ at the given viewport: the
// whole page, or (scrollTo set) the viewport scrolled to that element, which
// is what a phone user sees.
func (p *browserPage) screenshot(name string, width, height int64, mobile bool, scrollTo string) {
	p.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	p.do("viewport "+name, chromedp.EmulateViewport(width, height, opts...), chromedp.Sleep(200*time.Millisecond))
	shot := chromedp.FullScreenshot(100)
	if scrollTo != "" {
		p.do("scroll to "+scrollTo, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+strconv.Quote(scrollTo)+`).scrollIntoView()`),
			chromedp.Sleep(100*time.Millisecond))
		shot = chromedp.CaptureScreenshot()
	}
	buf, err := chromedp.Run(p.ctx, shot)
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := "artifacts"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
