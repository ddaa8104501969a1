//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tryPost is a POST that may fail (the server may be killed or stopped
// under it): it reports the status and body, or ok=false.
func tryPost(ctx context.Context, url, body string) (status int, raw []byte, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err == nil
}

// trackLoad publishes unique values to users from one goroutine each and
// records every acknowledged publish (seq -> value) until stop closes.
type trackLoad struct {
	mu    sync.Mutex
	acked map[string]map[uint64]int // user -> seq -> value
	wg    sync.WaitGroup
}

func startTrackLoad(base func() string, users []string, stop <-chan struct{}) *trackLoad {
	l := &trackLoad{acked: map[string]map[uint64]int{}}
	for _, u := range users {
		l.acked[u] = map[uint64]int{}
		l.wg.Go(func() {
			for i := 1; i < 1_000_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, raw, ok := tryPost(context.Background(), base()+"/track/"+u, fmt.Sprintf(`{"v":%d}`, i))
				if !ok || status != http.StatusAccepted {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var s struct{ Seq uint64 }
				if json.Unmarshal(raw, &s) == nil {
					l.mu.Lock()
					l.acked[u][s.Seq] = i
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

// check reads each user's history: seqs 1..head with no hole, every
// acknowledged publish at its seq, and no value stored twice (an
// unacknowledged publish may have landed, once).
func (l *trackLoad) check(t *testing.T, sc *sidecar) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for u, acked := range l.acked {
		if len(acked) == 0 {
			t.Fatalf("user %s: no publish was acknowledged", u)
		}
		stored := map[uint64]int{}
		seen := map[int]bool{}
		var after uint64
		for page := 0; page < 1000; page++ {
			var p struct {
				Events []struct {
					Seq  uint64
					Data struct{ V int }
				}
				Next uint64
			}
			if code := do(t, http.MethodGet, sc.URL(fmt.Sprintf("/api/v1/streams/track:%s/events?after=%d&limit=1000", u, after)), "", &p); code != http.StatusOK {
				t.Fatalf("history of %s: %d", u, code)
			}
			if len(p.Events) == 0 {
				break
			}
			for _, e := range p.Events {
				if e.Seq != after+1 {
					t.Fatalf("user %s: seq %d after %d: a hole", u, e.Seq, after)
				}
				if seen[e.Data.V] {
					t.Fatalf("user %s: value %d stored twice", u, e.Data.V)
				}
				seen[e.Data.V], stored[e.Seq], after = true, e.Data.V, e.Seq
			}
		}
		for seq, v := range acked {
			if stored[seq] != v {
				t.Fatalf("user %s: acknowledged seq %d = %d, stored %d: lost", u, seq, v, stored[seq])
			}
		}
	}
}

// A kill -9 of the sidecar in the middle of concurrent tracker and
// fibonacci load loses no acknowledged write and duplicates none, and the
// restarted process serves at once.
func TestSidecarKilledUnderLoadLosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := startSidecar(t, dir)
	addr := sc.addr
	base := func() string { return "http://" + addr }
	stop := make(chan struct{})
	load := startTrackLoad(base, []string{"k1", "k2", "k3"}, stop)
	var fibMu sync.Mutex
	fibAcked := 0
	var fibWG sync.WaitGroup
	fibWG.Go(func() {
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			status, raw, ok := tryPost(context.Background(), base()+"/fib/next", "")
			var r struct{ Position int }
			if ok && status == http.StatusOK && json.Unmarshal(raw, &r) == nil {
				fibMu.Lock()
				fibAcked = max(fibAcked, r.Position)
				fibMu.Unlock()
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	eventually(t, "load to be acknowledged", 60*time.Second, func() bool {
		fibMu.Lock()
		defer fibMu.Unlock()
		return fibAcked >= 20
	})
	sc.Kill()
	sc = startSidecar(t, dir, "--listen", addr)
	// The load goes on against the restarted process for a while.
	fibMu.Lock()
	atKill := fibAcked
	fibMu.Unlock()
	eventually(t, "fib load on the restarted sidecar", 60*time.Second, func() bool {
		fibMu.Lock()
		defer fibMu.Unlock()
		return fibAcked >= atKill+10
	})
	close(stop)
	load.wg.Wait()
	fibWG.Wait()

	load.check(t, sc)
	var cur struct {
		Position int
		Value    string
	}
	if code := do(t, http.MethodGet, sc.URL("/fib/current"), "", &cur); code != http.StatusOK || cur.Position < fibAcked || cur.Position > fibAcked+1 || cur.Value != fib(cur.Position) {
		t.Fatalf("fib/current %d %+v after the kill, want position %d (or one unacknowledged more)", code, cur, fibAcked)
	}
}

// A sidecar stopped (SIGSTOP) under load and continued loses nothing: its
// SSE subscriber resumes on the same connection with every event once,
// and every acknowledged publish is stored.
func TestSidecarStoppedUnderLoadContinues(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	stop := make(chan struct{})
	load := startTrackLoad(func() string { return "http://" + sc.addr }, []string{"s1"}, stop)
	eventually(t, "a first publish", 30*time.Second, func() bool {
		load.mu.Lock()
		defer load.mu.Unlock()
		return len(load.acked["s1"]) > 0
	})
	sse := openSSE(t, sc.URL("/api/v1/streams/track:s1/sse?from=start"), "")
	read := func(n int, from uint64) uint64 {
		t.Helper()
		for last := from; last < from+uint64(n); {
			ev, err := sse.Next()
			if err != nil {
				t.Fatalf("subscriber after seq %d: %v", last, err)
			}
			if ev.ID != last+1 {
				t.Fatalf("subscriber got seq %d (%s) after %d: lost, repeated or a gap", ev.ID, ev.Event, last)
			}
			last = ev.ID
		}
		return from + uint64(n)
	}
	last := read(20, 0)
	if err := syscall.Kill(sc.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // a stall, shorter than the write timeout
	if err := syscall.Kill(sc.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	read(50, last)
	close(stop)
	load.wg.Wait()
	load.check(t, sc)
	if code := do(t, http.MethodGet, sc.URL("/healthz"), "", nil); code != http.StatusOK {
		t.Fatalf("healthz after SIGCONT: %d", code)
	}
}

// A plugin stopped with SIGSTOP under load is found hung by its
// heartbeats, killed and restarted; meanwhile the other plugins serve,
// and the stream's subscriber sees seqs and the generator's lines go on
// with no gap and no duplicate.
func TestPluginStoppedUnderLoadIsReplaced(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir(), "--heartbeat", "1s")
	var created struct{ ID string }
	if code := do(t, http.MethodPut, sc.URL("/log"), `{"source":"synthetic","rate":200}`, &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	sse := openSSE(t, sc.URL("/sse/log/"+created.ID), "")
	var lastSeq, lastLine uint64
	read := func(n int) {
		t.Helper()
		for range n {
			ev, err := sse.Next()
			if err != nil {
				t.Fatalf("after seq %d: %v", lastSeq, err)
			}
			var line struct{ Line uint64 }
			ev.decode(t, &line)
			if lastSeq != 0 && (ev.ID != lastSeq+1 || line.Line != lastLine+1) {
				t.Fatalf("after seq %d line %d got seq %d line %d (%s): gap or duplicate", lastSeq, lastLine, ev.ID, line.Line, ev.Event)
			}
			lastSeq, lastLine = ev.ID, line.Line
		}
	}
	read(50)
	pids := pluginPIDs(t, "log", sc.cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("want one log plugin process, found %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if pos, a := fibNext(t, sc); pos != i {
			t.Fatalf("fib/next while the log plugin is stopped: %d %q, want position %d", a.status, a.body, i)
		}
	}
	eventually(t, "a new log plugin process", 60*time.Second, func() bool {
		now := pluginPIDs(t, "log", sc.cmd.Process.Pid)
		return len(now) == 1 && now[0] != pids[0]
	})
	read(400)
}

// A subscriber that stops reading does not slow the stream or its other
// subscribers: they get every event in order with no gap while it
// stalls, and the process keeps serving.
func TestSlowReaderDoesNotHoldOthers(t *testing.T) {
	t.Parallel()
	sc := startSidecar(t, t.TempDir())
	var created struct{ ID string }
	if code := do(t, http.MethodPut, sc.URL("/log"), `{"source":"synthetic","rate":2000}`, &created); code != http.StatusCreated {
		t.Fatalf("PUT /log: %d", code)
	}
	// The slow reader: a raw connection with a small receive buffer that
	// sends its request and never reads.
	conn, err := net.Dial("tcp", sc.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /sse/log/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", created.ID, sc.addr)

	sse := openSSE(t, sc.URL("/sse/log/"+created.ID), "")
	var last uint64
	for range 6000 { // three seconds of events at 2000/s
		ev, err := sse.Next()
		if err != nil {
			t.Fatalf("reader after seq %d: %v", last, err)
		}
		if ev.Event == "gap" || (last != 0 && ev.ID != last+1) {
			t.Fatalf("reader got seq %d (%s) after %d while another stalled", ev.ID, ev.Event, last)
		}
		last = ev.ID
	}
	if code := do(t, http.MethodGet, sc.URL("/healthz"), "", nil); code != http.StatusOK {
		t.Fatalf("healthz with a stalled reader: %d", code)
	}
	if pos, a := fibNext(t, sc); pos != 1 {
		t.Fatalf("fib/next with a stalled reader: %d %q", a.status, a.body)
	}
}
