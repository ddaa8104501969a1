package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// A follower with a Filter sends it on every connection, the resume
// included (replacing one the URL carried), and a server refusing the
// expression ends Follow at once with the server's 400, position and
// all, instead of reconnecting.
func TestFollowSendsTheFilterOnEveryConnection(t *testing.T) {
	t.Parallel()
	const expr = `data.level == "error" && seq > 1`
	var (
		mu   sync.Mutex
		reqs []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flt := r.URL.Query().Get("filter")
		mu.Lock()
		n := len(reqs)
		reqs = append(reqs, flt+" after="+r.URL.Query().Get("after"))
		mu.Unlock()
		if flt != expr {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"code":"invalid_filter","message":"invalid filter at 1:7: Syntax error","fields":[{"field":"filter","message":"invalid filter at 1:7: Syntax error"}]}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 0 {
			fmt.Fprint(w, "id:3\ndata:{\"level\":\"error\"}\n\n")
			return // the first connection ends: the client resumes
		}
		fmt.Fprint(w, "id:7\ndata:{\"level\":\"error\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	c, err := New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	after := uint64(0)
	var got []uint64
	stop := errors.New("enough")
	err = c.FollowURL(ctx, ts.URL+"/sse/log/x?filter=stale", FollowOptions{After: &after, Filter: expr, MinBackoff: time.Millisecond},
		func(e api.Event) error {
			if got = append(got, e.Seq); e.Seq == 7 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || fmt.Sprint(got) != "[3 7]" {
		t.Fatalf("follow: %v after seqs %v", err, got)
	}
	mu.Lock()
	want := expr + " after=0|" + expr + " after=3"
	if strings.Join(reqs, "|") != want {
		t.Errorf("requests %q, want %q", strings.Join(reqs, "|"), want)
	}
	mu.Unlock()

	for _, tr := range []Transport{TransportSSE, TransportWS} {
		err = c.Follow(ctx, "x", FollowOptions{After: &after, Filter: "data.(", Transport: tr, MinBackoff: time.Millisecond},
			func(api.Event) error { return nil })
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid_filter" || !strings.Contains(err.Error(), "1:7") {
			t.Fatalf("%s bad filter: %v", tr, err)
		}
	}
}
