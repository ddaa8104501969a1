package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// frame is one event of the scripted test stream.
type frame struct {
	seq  uint64
	typ  string
	data string
}

// script is a stream 1..12 with a gap marker for 6..8 (seq 8).
func script() []frame {
	var out []frame
	for i := uint64(1); i <= 12; i++ {
		switch {
		case i >= 6 && i < 8:
			continue
		case i == 8:
			out = append(out, frame{8, "gap", `{"from":6,"to":8}`})
		default:
			out = append(out, frame{i, "log", fmt.Sprintf(`{"line":%d}`, i)})
		}
	}
	return out
}

// sseServer serves script over SSE the way a flaky server would: each
// connection sends a few events then drops (cleanly or abruptly), resumes
// re-send events the client already has, lines end in LF or CRLF, data is
// split over several lines, and heartbeats come in between.
type sseServer struct {
	perConn int // events per connection before dropping
	replay  int // already-delivered events sent again on resume
	status  []int

	mu      sync.Mutex
	resumes []string // Last-Event-ID of each connection
	conns   int
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := s.conns
	s.conns++
	s.resumes = append(s.resumes, r.Header.Get("Last-Event-ID"))
	s.mu.Unlock()
	if n < len(s.status) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status[n])
		fmt.Fprintf(w, `{"error":{"code":"c%d","message":"scripted"}}`, s.status[n])
		return
	}
	after, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	if q := r.URL.Query().Get("after"); q != "" && r.Header.Get("Last-Event-ID") == "" {
		after, _ = strconv.ParseUint(q, 10, 64)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	eol := "\n"
	if n%2 == 1 {
		eol = "\r\n"
	}
	fmt.Fprintf(w, "retry: 1%s%s: hb%s%s", eol, eol, eol, eol)
	w.(http.Flusher).Flush()
	evs := script()
	start := 0
	for start < len(evs) && evs[start].seq <= after {
		start++
	}
	start = max(0, start-s.replay)
	sent := 0
	for _, e := range evs[start:] {
		if sent == s.perConn {
			if n%2 == 0 {
				panic(http.ErrAbortHandler) // drop the connection mid-stream
			}
			return // end the response cleanly
		}
		data := strings.Replace(e.data, ":", ":"+eol+"data: ", 1) // multi-line data
		fmt.Fprintf(w, "id: %d%sevent: %s%sdata: %s%s%s", e.seq, eol, e.typ, eol, data, eol, eol)
		w.(http.Flusher).Flush()
		sent++
	}
	<-r.Context().Done() // the whole script was sent: stay open until the client leaves
}

func pinMax(n int64) int64 { return n - 1 }

func TestFollowSSEResumesWithoutLossOrDuplicates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		perConn, replay int
	}{
		{"drops every 3, replays 2", 3, 2},
		{"drops every event", 1, 0},
		{"drops every 4, replays 3", 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &sseServer{perConn: tc.perConn, replay: tc.replay}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			c, err := New(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, reconnects := followN(t, c, ts.URL+"/sse/log/x", FollowOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, 9)
			want := []string{"1 log {\"line\":\n1}", "2 log {\"line\":\n2}", "3 log {\"line\":\n3}", "4 log {\"line\":\n4}", "5 log {\"line\":\n5}",
				`8 gap {"from":` + "\n" + `6,"to":8}`, "9 log {\"line\":\n9}", "10 log {\"line\":\n10}", "11 log {\"line\":\n11}"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("events\n%q\nwant\n%q", got, want)
			}
			if reconnects == 0 {
				t.Fatal("no reconnect happened: the test did not exercise resume")
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.resumes[0] != "" || srv.resumes[1] == "" {
				t.Fatalf("Last-Event-ID per connection %q: want none first, then the last seq", srv.resumes)
			}
		})
	}
}

// followN follows url until n events arrived and returns them as
// "seq type data" strings plus the number of reconnects.
func followN(t *testing.T, c *Client, url string, o FollowOptions, n int) ([]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	reconnects := 0
	hook := o.OnReconnect
	o.OnReconnect = func(r Reconnect) {
		reconnects++
		if hook != nil {
			hook(r)
		}
	}
	stop := errors.New("enough")
	err := c.FollowURL(ctx, url, o, func(e api.Event) error {
		if e.Stream != "x" {
			t.Errorf("event %d stream %q, want x", e.Seq, e.Stream)
		}
		if e.IsGap() {
			if from, to, ok := e.GapRange(); !ok || to != e.Seq || from > to {
				t.Errorf("gap %s seq %d: bad range", e.Data, e.Seq)
			}
		}
		got = append(got, fmt.Sprintf("%d %s %s", e.Seq, e.Type, e.Data))
		if len(got) == n {
			return stop
		}
		return nil
	})
	var he *HandlerError
	if !errors.As(err, &he) || !errors.Is(err, stop) {
		t.Fatalf("Follow: %v (after %q)", err, got)
	}
	return got, reconnects
}

func TestFollowPermanentAndTemporaryAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     []int
		wantStatus int // 0: follows successfully
		wantConns  int
	}{
		{"404 is not retried", []int{404}, 404, 1},
		{"401 is not retried", []int{401}, 401, 1},
		{"503 and 500 are retried", []int{503, 500}, 0, 3},
		{"429 is retried, then 400 stops", []int{429, 400}, 400, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &sseServer{perConn: 100, status: tt.status}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			c, _ := New(ts.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stop := errors.New("stop")
			err := c.FollowURL(ctx, ts.URL+"/sse/log/x?after=0", FollowOptions{MinBackoff: time.Millisecond}, func(api.Event) error { return stop })
			var ae *APIError
			switch {
			case tt.wantStatus == 0 && !errors.Is(err, stop):
				t.Fatalf("err %v, want the handler's", err)
			case tt.wantStatus != 0 && (!errors.As(err, &ae) || ae.Status != tt.wantStatus || ae.Code != "c"+strconv.Itoa(tt.wantStatus) || ae.Message != "scripted"):
				t.Fatalf("err %#v, want APIError %d", err, tt.wantStatus)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.conns != tt.wantConns {
				t.Fatalf("%d connections, want %d", srv.conns, tt.wantConns)
			}
		})
	}
}

func TestFollowStopsOnContext(t *testing.T) {
	t.Parallel()
	srv := &sseServer{perConn: 100}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, _ := New(ts.URL)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := c.FollowURL(ctx, ts.URL+"/sse/log/x?after=0", FollowOptions{}, func(api.Event) error {
		n++
		if n == 10 { // all of the script: the server now idles
			time.AfterFunc(10*time.Millisecond, cancel)
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 10 {
		t.Fatalf("err %v after %d events, want context.Canceled after 10", err, n)
	}
}

// The server's retry: becomes the base of the backoff.
func TestFollowHonoursServerRetry(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 30\n\n") // then end: the client must reconnect
	}))
	defer ts.Close()
	c, _ := New(ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var delays []time.Duration
	o := FollowOptions{MinBackoff: time.Millisecond, MaxBackoff: 100 * time.Millisecond, rnd: pinMax,
		OnReconnect: func(r Reconnect) {
			delays = append(delays, r.Delay)
			if len(delays) == 4 {
				cancel()
			}
		}}
	_ = c.FollowURL(ctx, ts.URL+"/time", o, func(api.Event) error { return nil })
	want := []time.Duration{30 * time.Millisecond, 60 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v (retry: 30 doubled, capped at 100ms)", delays, want)
	}
}

// A connection that goes silent (no heartbeat) is dropped and resumed.
func TestFollowIdleTimeoutReconnects(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns++
		n := conns
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: %d\ndata: %d\n\n", n, n)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent
	}))
	defer ts.Close()
	c, _ := New(ts.URL)
	var errs []error
	o := FollowOptions{IdleTimeout: 50 * time.Millisecond, MinBackoff: time.Millisecond,
		OnReconnect: func(r Reconnect) { errs = append(errs, r.Err) }}
	got, _ := followN(t, c, ts.URL+"/sse/log/x?after=0", o, 3)
	if len(got) != 3 || got[2] != "3 message 3" {
		t.Fatalf("events %q", got)
	}
	if len(errs) < 2 || !strings.Contains(errs[0].Error(), "no data for") {
		t.Fatalf("reconnect errors %v, want idle timeouts", errs)
	}
}

func TestFollowRejectsWhatIsNotAStream(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/badid" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: nope\ndata: 1\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer ts.Close()
	c, _ := New(ts.URL)
	for _, path := range []string{"/json", "/badid"} {
		err := c.FollowURL(context.Background(), ts.URL+path, FollowOptions{}, func(api.Event) error { return nil })
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("%s: err %v, want ErrProtocol", path, err)
		}
	}
	for _, bad := range []string{"ftp://x/y", "http:///nohost", "http://h/s?after=x"} {
		if err := c.FollowURL(context.Background(), bad, FollowOptions{}, func(api.Event) error { return nil }); err == nil {
			t.Fatalf("%s: no error", bad)
		}
	}
}

func TestBackoffFullJitter(t *testing.T) {
	t.Parallel()
	b := backoff{base: 100 * time.Millisecond, max: 5 * time.Second, rnd: pinMax}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i, w := range want {
		if d := b.delay(i); d != w*time.Millisecond {
			t.Fatalf("attempt %d: ceiling %v, want %v", i, d, w*time.Millisecond)
		}
	}
	if d := b.delay(200); d != 5*time.Second {
		t.Fatalf("huge attempt: %v, want the cap", d)
	}
	b.rnd = nil
	for i := 0; i < 1000; i++ {
		if d := b.delay(i % 70); d < 0 || d > 5*time.Second {
			t.Fatalf("delay %v outside [0, cap]", d)
		}
	}
}

func TestStreamFromPath(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/api/v1/streams/abc/sse": "abc", "/api/v1/streams/track:u/ws": "track:u", "/sse/log/id1": "id1",
		"/magic": "magic", "/time": "time", "/sse/fib": "fib", "/sse/track/bob": "track:bob", "/ws/track/bob": "track:bob",
	} {
		if got := streamFromPath(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

var _ = json.Valid
