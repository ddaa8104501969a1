package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/sidestream/sidestream/sidecar/api"
)

func TestFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env           map[string]string
		server, token string
	}{
		{nil, DefaultServer, ""},
		{map[string]string{EnvServer: "http://n2:9000", EnvToken: "t"}, "http://n2:9000", "t"},
		{map[string]string{EnvServer: ""}, DefaultServer, ""},
	} {
		server, token := FromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if server != tc.server || token != tc.token {
			t.Errorf("%v: %q %q, want %q %q", tc.env, server, token, tc.server, tc.token)
		}
	}
}

// The token goes on SSE streams too (REST and WS are checked in their
// tests), and a 401 is recognisable.
func TestSSECarriesTheToken(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		auth []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"unauthenticated","message":"no bearer token"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\ndata: {}\n\n")
	}))
	defer ts.Close()
	stop := errors.New("stop")
	after := uint64(0)
	c, _ := New(ts.URL, WithToken("tok"))
	err := c.FollowURL(context.Background(), ts.URL+"/sse/log/x", FollowOptions{After: &after}, func(api.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("follow with a token: %v", err)
	}
	anon, _ := New(ts.URL)
	err = anon.FollowURL(context.Background(), ts.URL+"/sse/log/x", FollowOptions{After: &after}, func(api.Event) error { return stop })
	if !IsUnauthenticated(err) {
		t.Fatalf("follow without a token: %v, want a 401 APIError", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 2 || auth[0] != "Bearer tok" || auth[1] != "" {
		t.Errorf("Authorization headers %q", auth)
	}
}
