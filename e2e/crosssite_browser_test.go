package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// crossSitePage connects to the sidecar at addr from another origin: an
// EventSource on /magic and a WebSocket on /echo that sends one message.
// window.sse and window.ws end as "open"/"echo:hi" or "error".
func crossSitePage(addr string) string {
	return `<!doctype html><title>client</title><script>
window.sse = 'pending'; window.ws = 'pending';
const es = new EventSource('http://` + addr + `/magic');
es.onopen = () => { window.sse = 'open'; es.close(); };
es.onerror = () => { if (window.sse === 'pending') window.sse = 'error'; es.close(); };
const ws = new WebSocket('ws://` + addr + `/echo');
ws.onopen = () => ws.send('hi');
ws.onmessage = (e) => { window.ws = 'echo:' + e.data; ws.close(); };
ws.onerror = () => { if (window.ws === 'pending') window.ws = 'error'; };
</script>`
}

// TestCrossSiteBrowser, in real Chromium: a page opened from disk
// (Origin: null) and a page served by another origin open the sidecar's
// SSE stream and WebSocket when the operator lists them
// (--cors-origin null,http://…), and are refused with nothing listed.
func TestCrossSiteBrowser(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	var page string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(other.Close)

	allowing := startSidecar(t, t.TempDir(), "--cors-origin", "null,"+other.URL)
	refusing := startSidecar(t, t.TempDir())
	for _, c := range []struct {
		name    string
		sc      *sidecar
		fromURL bool
		want    [2]string
	}{
		{"file page, null allowed", allowing, false, [2]string{"open", "echo:hi"}},
		{"other origin, allowed", allowing, true, [2]string{"open", "echo:hi"}},
		{"file page, nothing allowed", refusing, false, [2]string{"error", "error"}},
		{"other origin, nothing allowed", refusing, true, [2]string{"error", "error"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			page = crossSitePage(c.sc.addr)
			target := other.URL + "/client.html"
			if !c.fromURL {
				path := filepath.Join(t.TempDir(), "client.html")
				if err := os.WriteFile(path, []byte(page), 0o600); err != nil {
					t.Fatal(err)
				}
				target = "file://" + path
			}
			p := openBrowser(t, c.sc.addr)
			p.do("open "+target, chromedp.Navigate(target))
			p.waitJS("both connections settled", `window.sse !== 'pending' && window.ws !== 'pending'`)
			got := [2]string{evalJS[string](p, `window.sse`), evalJS[string](p, `window.ws`)}
			if got != c.want {
				t.Errorf("SSE, WebSocket = %q, want %q; problems: %v", got, c.want, strings.Join(p.Problems(), "; "))
			}
		})
	}
}
