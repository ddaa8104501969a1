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

// A follower asking for MaxRate passes the server's skipped markers to
// fn, resumes after the range they reported, and trims a marker the
// server sends again over a resume to what was not reported yet.
func TestFollowPassesSkippedMarkersOnce(t *testing.T) {
	t.Parallel()
	conns := [][]string{
		{"id:1\ndata:{}\n\n", "id:1\nevent:skipped\ndata:{\"skipped\":3,\"from\":2,\"to\":4}\n\n"},
		{"id:1\nevent:skipped\ndata:{\"skipped\":5,\"from\":2,\"to\":6}\n\n", "id:7\ndata:{}\n\n",
			"id:7\nevent:skipped\ndata:{\"skipped\":1,\"from\":8,\"to\":8}\n\n", "id:9\ndata:{}\n\n"},
	}
	var (
		mu   sync.Mutex
		reqs []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(reqs)
		reqs = append(reqs, r.URL.Query().Get("max_rate")+" "+r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		for _, f := range conns[min(n, len(conns)-1)] {
			fmt.Fprint(w, f)
		}
		w.(http.Flusher).Flush()
		if n == 0 {
			return // the first connection ends: the client resumes
		}
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
	var got []string
	stop := errors.New("enough")
	err = c.FollowURL(ctx, ts.URL+"/sse/log/x", FollowOptions{After: &after, MaxRate: 5, MinBackoff: time.Millisecond},
		func(e api.Event) error {
			if s, ok := e.SkippedRange(); ok {
				got = append(got, fmt.Sprintf("%d skipped %d:%d-%d", e.Seq, s.Skipped, s.From, s.To))
			} else {
				got = append(got, fmt.Sprint(e.Seq))
			}
			if e.Seq == 9 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) {
		t.Fatalf("follow: %v after %q", err, got)
	}
	want := "1|1 skipped 3:2-4|4 skipped 2:5-6|7|7 skipped 1:8-8|9"
	if strings.Join(got, "|") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) < 2 || reqs[0] != "5 0" || reqs[1] != "5 4" {
		t.Fatalf("max_rate and Last-Event-ID per connection: %q", reqs)
	}
}
