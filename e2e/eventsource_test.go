package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A plain browser client, as the SSE prototype's pages were, sets only
// EventSource.onmessage: it receives a stream's events (data events are
// on the default type) in seq order, and a client that asks for the
// types (?event_types=1) gets them named instead.
func TestEventSourceOnMessageInChromium(t *testing.T) {
	sc := startSidecar(t, t.TempDir())
	var created struct{ ID string }
	if code := do(t, http.MethodPut, sc.URL("/log"), `{"rate":50}`, &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	p := openBrowser(t, sc.addr)
	t.Cleanup(func() {
		for _, pr := range p.Problems() {
			t.Errorf("page problem: %s", pr)
		}
	})
	// Any page of the sidecar's origin will do: the script is the client.
	p.do("open a page of the sidecar", chromedp.Navigate(sc.URL("/livedoc")))
	p.do("connect plain EventSources", chromedp.Evaluate[chromedp.Void](`
		window.got = {log: [], magic: [], typedMessage: 0, typedNamed: 0};
		const log = new EventSource('/sse/log/`+created.ID+`?from=start');
		log.onmessage = (e) => window.got.log.push([e.type, e.lastEventId, e.data]);
		const magic = new EventSource('/magic');
		magic.onmessage = (e) => window.got.magic.push([e.type, e.lastEventId, e.data]);
		const typed = new EventSource('/magic?event_types=1');
		typed.onmessage = () => window.got.typedMessage++;
		typed.addEventListener('magic', () => window.got.typedNamed++);
		window.sources = [log, magic, typed];
	`))
	p.waitJS("onmessage received log and magic events, the typed listener magic events",
		`got.log.length >= 5 && got.magic.length >= 2 && got.typedNamed >= 2`)
	type row = []string
	logRows := evalJS[[]row](p, `got.log.slice(0, 5)`)
	for i, r := range logRows {
		if r[0] != "message" || r[1] != strconv.Itoa(i+1) || !strings.Contains(r[2], `"line":`) {
			t.Errorf("log event %d in the page: %q, want a message with id %d and the log line", i, r, i+1)
		}
	}
	if r := evalJS[row](p, `got.magic[0]`); r[0] != "message" || !strings.Contains(r[2], `"magic":`) {
		t.Errorf("magic event in the page: %q", r)
	}
	if n := evalJS[int](p, `got.typedMessage`); n != 0 {
		t.Errorf("?event_types=1: onmessage saw %d events, want every event named", n)
	}
	p.do("close the sources", chromedp.Evaluate[chromedp.Void](`window.sources.forEach((s) => s.close())`))
}
