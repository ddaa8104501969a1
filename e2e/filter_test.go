package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

// TestFilterOverSSEWSAndHistory: ?filter= on the built binary keeps only
// the matching events of a tracker stream on SSE, WebSocket and a
// history page, live events included, and refuses a bad expression
// with a 400 naming its position.
func TestFilterOverSSEWSAndHistory(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	post := func(level string, n int) uint64 {
		t.Helper()
		var a struct{ Seq uint64 }
		if code := do(t, http.MethodPost, sc.URL("/track/ops"), fmt.Sprintf(`{"level":%q,"n":%d}`, level, n), &a); code != http.StatusAccepted {
			t.Fatalf("publish: %d", code)
		}
		return a.Seq
	}
	var errs []uint64
	for n := 1; n <= 9; n++ {
		level := "info"
		if n%3 == 0 {
			level = "error"
		}
		if seq := post(level, n); level == "error" {
			errs = append(errs, seq)
		}
	}
	q := "filter=" + url.QueryEscape(`data.level == "error" && data.n > 3`) // n 6 and 9
	base := sc.URL("/api/v1/streams/track:ops")

	var page struct {
		Events []api.Event
		Next   uint64
	}
	if code := do(t, http.MethodGet, base+"/events?"+q, "", &page); code != http.StatusOK ||
		len(page.Events) != 2 || page.Events[0].Seq != errs[1] || page.Events[1].Seq != errs[2] {
		t.Fatalf("history page: %d %+v, want seqs %v", code, page, errs[1:])
	}

	sse := openSSE(t, base+"/sse?from=start&"+q, "")
	ws := dialWS(t, base+"/ws?after=0&"+q)
	post("error", 1) // does not match: n is not > 3
	post("info", 10) // does not match: not an error
	live := post("error", 12)
	for _, want := range []uint64{errs[1], errs[2], live} {
		ev, err := sse.Next()
		if err != nil || ev.ID != want || !strings.Contains(ev.Data, `"error"`) {
			t.Fatalf("SSE: %+v %v, want seq %d", ev, err, want)
		}
		var env api.Event
		readEnvelope(t, ws, &env)
		if env.Seq != want {
			t.Fatalf("WS: seq %d, want %d", env.Seq, want)
		}
	}

	for _, route := range []string{"/events", "/sse", "/ws"} {
		a := send(t, http.MethodGet, base+route+"?filter="+url.QueryEscape(`data.level ==`), "",
			map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"})
		if a.status != http.StatusBadRequest || a.errorCode() != "invalid_filter" || !strings.Contains(string(a.body), "1:14") {
			t.Fatalf("%s bad filter: %d %s", route, a.status, a.body)
		}
	}
}
