package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/guest"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
)

// With auth on, the node's guests lifecycle stream belongs to no tenant:
// every token that may read streams reads it (as it reads the list of
// guests), one without streams:read may not, and another stream of no
// known owner stays hidden.
func TestGuestsStreamReadableByEveryReaderWithAuth(t *testing.T) {
	t.Parallel()
	e := accessEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{guest.StreamName, "ownerless"} {
		st, err := e.hub.Open(ctx, name, stream.Config{Persist: true})
		if err != nil {
			t.Fatal(err)
		}
		d := event.Draft{Type: "appeared", Time: time.Now(), Data: json.RawMessage(`{"guest":"vm-1","source":"vms"}`)}
		if _, err := st.Publish(ctx, []event.Draft{d}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/streams/guests/events?after=0", tokA, http.StatusOK},
		{"/api/v1/streams/guests/events?after=0", tokB, http.StatusOK},
		{"/api/v1/streams/guests/events?after=0", "", http.StatusUnauthorized},
		{"/api/v1/streams/guests/events?after=0", lackToken(auth.ScopeStreamsRead), http.StatusForbidden},
		{"/api/v1/streams/guests/sse?from=start", tokB, http.StatusOK},
		{"/api/v1/streams/ownerless/events?after=0", tokA, http.StatusNotFound},
	} {
		st, body := e.status(http.MethodGet, tc.path, tc.token)
		if st != tc.want {
			t.Errorf("GET %s as %q: %d %s, want %d", tc.path, tc.token, st, body, tc.want)
			continue
		}
		// An SSE answer's first read may hold only its retry line: the
		// history page's body is the one checked.
		if st == http.StatusOK && strings.Contains(tc.path, "/events") && !strings.Contains(body, "vm-1") {
			t.Errorf("GET %s as %q: %s, want the appeared event of vm-1", tc.path, tc.token, body)
		}
	}
}
