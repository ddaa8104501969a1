package bench

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRFC3339(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"2026-11-23T17:00:00.123456789Z", "2026-11-23T17:00:00Z", "2026-02-28T23:59:59.5Z",
		"2024-02-29T00:00:00.000001Z", "1999-12-31T23:59:59.99Z", "2026-11-23T18:00:00.1+01:00",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseRFC3339([]byte(s))
		if !ok || got != want.UnixNano() {
			t.Errorf("parseRFC3339(%q) = %d, %v; want %d", s, got, ok, want.UnixNano())
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01T00:00:00Z", "2026-11-23T17:00:00.Z"} {
		if _, ok := parseRFC3339([]byte(bad)); ok {
			t.Errorf("parseRFC3339(%q) accepted", bad)
		}
	}
}

func TestFields(t *testing.T) {
	t.Parallel()
	env := []byte(`{"stream":"em-1","seq":42,"type":"magic","time":"2026-11-23T17:00:00Z","data":{"timestamp":"x","seq":7}}`)
	if seq, ok := uintField(env, keySeq); !ok || seq != 42 {
		t.Errorf("seq = %d, %v; want the envelope's 42", seq, ok)
	}
	if got := string(stringField(env, keyTime)); got != "2026-11-23T17:00:00Z" {
		t.Errorf("time = %q", got)
	}
	if got := string(stringField(env, keyTimestamp)); got != "x" {
		t.Errorf("timestamp = %q", got)
	}
	if _, ok := uintField([]byte(`{"seq":"x"}`), keySeq); ok {
		t.Error("a non-number seq was accepted")
	}
}

func TestParseBuckets(t *testing.T) {
	t.Parallel()
	got, err := ParseBuckets("[0, 1ms, 10ms,1s]")
	if err != nil || len(got) != 4 || got[1] != time.Millisecond || got[3] != time.Second {
		t.Fatalf("ParseBuckets = %v, %v", got, err)
	}
	for _, bad := range []string{"", "[]", "[1ms,1ms]", "[5ms,1ms]", "[0,soon]"} {
		if _, err := ParseBuckets(bad); err == nil {
			t.Errorf("ParseBuckets(%q) accepted", bad)
		}
	}
}

func TestBucketCounts(t *testing.T) {
	t.Parallel()
	h := hdrhistogram.New(histLow, histHigh, histDigit)
	for _, us := range []int64{100, 900, 1500, 9000, 20000, 2_000_000} {
		_ = h.RecordValue(us)
	}
	bs := bucketCounts(h, []time.Duration{0, time.Millisecond, 10 * time.Millisecond, time.Second})
	want := []int64{2, 2, 1, 1}
	for i, b := range bs {
		if b.Count != want[i] {
			t.Errorf("bucket %d [%v,%v) = %d, want %d", i, b.From, b.To, b.Count, want[i])
		}
	}
	if bs[len(bs)-1].To != nil {
		t.Error("last bucket must be open (+Inf)")
	}
	l := summarize("x", h, nil)
	if l.Count != 6 || l.P50 > l.P99 || l.Max < 1999 || l.Min > 0.101 {
		t.Errorf("summary %+v", l)
	}
}

func TestReportText(t *testing.T) {
	t.Parallel()
	h := newLatencies("delivery")
	h.record(3, 1200, 800, 40000)
	r := &Report{Scenario: "fanout", Target: "http://x", Params: map[string]any{"rate": 5}, Completed: true,
		OpsUnit: "deliveries", Ops: 1234567, Rate: 1000000, Metrics: map[string]float64{"m": 1.5},
		Latencies: []Latency{summarize("delivery", h.merged(), DefaultBuckets)}}
	r.check("deliveries/s", "≥ 1", "2", true)
	r.checkLatency("nothing", "p99 of nothing", 1)
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1,234,567", "1,000,000/s", "Bucket", "[25ms,", "+Inf]", "ok   deliveries/s", "FAIL p99 of nothing", "rate=5"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// The report splits CPU per op into server and generator, each with its
// kernel share: the figure that tells where a publish's cost goes.
func TestReportCPUPerOp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    Report
		want []string
	}{
		{"server and generator", Report{OpsUnit: "publishes", Ops: 1000, Elapsed: 1,
			Server: &ServerStats{CPUPercent: 4, SysPercent: 1, CPUMicrosPerOp: 40, SysMicrosPerOp: 15},
			Client: &ClientStats{CPUPercent: 2, CPUMicrosPerOp: 20, SysMicrosPerOp: 12}},
			[]string{"cpu per op", "server 40.0 µs (user 25.0, sys 15.0)", "generator 20.0 µs (user 8.0, sys 12.0) = 60.0 µs", "(sys 1%"}},
		{"no server process", Report{OpsUnit: "publishes", Ops: 10,
			Client: &ClientStats{CPUMicrosPerOp: 5, SysMicrosPerOp: 1}},
			[]string{"cpu per op", "generator 5.0 µs (user 4.0, sys 1.0) = 5.0 µs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			if err := tc.r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(b.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, b.String())
				}
			}
			if tc.r.Server == nil && strings.Contains(b.String(), "server ") {
				t.Errorf("server CPU printed without a server:\n%s", b.String())
			}
		})
	}
	if got := perOp(3*time.Millisecond, 100); got != 30 {
		t.Errorf("perOp(3ms, 100) = %v µs, want 30", got)
	}
	if got := perOp(time.Second, 0); got != 0 {
		t.Errorf("perOp with no ops = %v, want 0", got)
	}
}

func TestProcOfSelf(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := pidByPort(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("pidByPort of our own listener = %d, %v; want %d", pid, err, os.Getpid())
	}
	s, err := readProc(pid)
	if err != nil || s.RSS <= 0 || s.Threads <= 0 || s.Sys > s.CPU {
		t.Fatalf("readProc(self) = %+v, %v", s, err)
	}
	if c := selfCPU(); c.Total <= 0 || c.Sys > c.Total {
		t.Errorf("selfCPU = %+v: want user + system > 0, system within it", c)
	}
	if _, err := readProc(1 << 30); err == nil {
		t.Error("readProc of a missing pid succeeded")
	}
	if !isLocal("127.0.0.1") || !isLocal("localhost") || isLocal("192.0.2.1") {
		t.Error("isLocal is wrong about loopback or TEST-NET")
	}
	n, err := raiseNoFile()
	if err != nil || n == 0 {
		t.Errorf("raiseNoFile = %d, %v", n, err)
	}
}

// Subscribers go round-robin over the subscriber targets; without any they
// stay on the first target; a bad one is a usage error.
func TestTargets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		targets []string
		want    []string // subHost(0..3)
	}{
		{"one target", nil, []string{"a:1", "a:1", "a:1", "a:1"}},
		{"others", []string{"http://b:2", "http://c"}, []string{"b:2", "c:80", "b:2", "c:80"}},
		{"first again", []string{"http://a:1", "http://b:2", "http://c:3"}, []string{"a:1", "b:2", "c:3", "a:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := newEnv("fanout", Options{Target: "http://a:1", Targets: tc.targets, PID: -1})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				if got := e.subHost(i); got != want {
					t.Errorf("subHost(%d) = %q, want %q", i, got, want)
				}
			}
		})
	}
	if _, err := newEnv("fanout", Options{Target: "http://a:1", Targets: []string{"ftp://b"}, PID: -1}); !errors.Is(err, ErrUsage) {
		t.Errorf("ftp target: %v, want ErrUsage", err)
	}
}

// Same-node and cross-node histograms exist only when both sides have
// subscribers; the report gives their difference and checks its p99.
func TestCrossNodeAdded(t *testing.T) {
	t.Parallel()
	one, err := newEnv("fanout", Options{Target: "http://a:1", Targets: []string{"http://b:2", "http://c:3"}, PID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if h := one.splitHists()(0); h != nil || len(one.hists) != 0 {
		t.Errorf("all subscribers cross-node: split histogram %v, hists %d; want none", h, len(one.hists))
	}
	e, err := newEnv("fanout", Options{Target: "http://a:1", Targets: []string{"http://a:1", "http://b:2"}, PID: -1})
	if err != nil {
		t.Fatal(err)
	}
	split := e.splitHists()
	same, cross := split(0), split(1)
	if same == nil || cross == nil || same.name != histSameNode || cross.name != histCrossNode {
		t.Fatalf("split(0) = %v, split(1) = %v", same, cross)
	}
	same.record(0, 1000, 1000, 2000)
	cross.record(1, 3000, 3000, 9000)
	e.finish(nil)
	for _, fn := range e.posts {
		fn(e.rep)
	}
	r := e.rep
	if p50 := r.Metrics["cross_node_added_p50_ms"]; p50 < 1.99 || p50 > 2.01 {
		t.Errorf("added p50 = %v ms, want 2", p50)
	}
	if p99 := r.Metrics["cross_node_added_p99_ms"]; p99 < 6.9 || p99 > 7.1 {
		t.Errorf("added p99 = %v ms, want 7", p99)
	}
	if len(r.Checks) != 1 || r.Checks[0].OK {
		t.Errorf("checks %+v: want the added p99 (7ms) to fail ≤ 5ms", r.Checks)
	}
}

// An event whose bytes arrive in a later network read gets that read's
// time even when the buffer held part of it (a lagging subscriber's
// buffer is never empty: a receive time taken only on an empty buffer
// froze, and later events seemed to arrive before they were sent). Both
// transports, through the connections the generator really opens.
func TestReceiveTimeFollowsNetworkReads(t *testing.T) {
	t.Parallel()
	sse := func(seq int) []byte { return fmt.Appendf(nil, "id: %d\ndata: {}\n\n", seq) }
	ws := func(seq int) []byte {
		p := fmt.Appendf(nil, `{"seq":%d,"type":"log"}`, seq)
		return append([]byte{0x81, byte(len(p))}, p...)
	}
	for _, tc := range []struct {
		transport string
		event     func(seq int) []byte
	}{{"sse", sse}, {"ws", ws}} {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			e2 := tc.event(2)
			// Event 2 is cut in two: its end and event 3 come 50ms later.
			first := append(tc.event(1), e2[:len(e2)/2]...)
			second := append(e2[len(e2)/2:], tc.event(3)...)
			host, secondAt := splitServer(t, first, second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sub, err := (&env{}).subscribe(ctx, host, tc.transport, "/s")
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			var d delivery
			at := map[uint64]time.Time{}
			for range 3 {
				if err := sub.read(&d); err != nil {
					t.Fatal(err)
				}
				at[d.seq] = d.at
			}
			// Causal, not timed: event 2 cannot be whole before the
			// second write began (a frozen receive time would be event
			// 1's, taken before it).
			if sent := <-secondAt; at[2].Before(sent) {
				t.Errorf("event 2 received at %v, before the second write that completes it began (%v)", at[2], sent)
			}
			if !at[3].Equal(at[2]) {
				t.Errorf("event 3 arrived in the same read as event 2: %v vs %v", at[3], at[2])
			}
		})
	}
}

// splitServer answers one SSE or WebSocket request on loopback, then
// writes first, and second 50ms later; it returns its host:port and the
// time the second write began.
func splitServer(t *testing.T, first, second []byte) (string, <-chan time.Time) {
	t.Helper()
	done := make(chan struct{})
	secondAt := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
		if key := r.Header.Get("Sec-WebSocket-Key"); key != "" {
			sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i, b := range [][]byte{[]byte(head), first, second} {
			if i == 2 {
				time.Sleep(50 * time.Millisecond) // most likely a read of its own
				secondAt <- time.Now()
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, c) // until the client closes
	}))
	t.Cleanup(func() { srv.Close(); <-done })
	return srv.Listener.Addr().String(), secondAt
}

// A subscriber's seqs are accounted as users read them: a jump is loss, a
// gap marker counts what it covers, a repeat is a duplicate, and an
// offline marker (its id is the subscriber's cursor) is neither a delivery
// nor a repeat.
func TestConsumerAccounting(t *testing.T) {
	t.Parallel()
	type in struct {
		seq          uint64
		gap, offline bool
	}
	for _, tc := range []struct {
		name                   string
		seqs                   []in
		count, lost, dups, off int64
	}{
		{"in order", []in{{seq: 1}, {seq: 2}, {seq: 3}}, 3, 0, 0, 0},
		{"jump is loss", []in{{seq: 1}, {seq: 4}}, 2, 2, 0, 0},
		{"gap marker covers", []in{{seq: 1}, {seq: 5, gap: true}, {seq: 6}}, 2, 4, 0, 0},
		{"repeat is duplicate", []in{{seq: 1}, {seq: 2}, {seq: 2}}, 2, 0, 1, 0},
		{"offline marker at the cursor", []in{{seq: 1}, {seq: 2}, {seq: 2, offline: true}, {seq: 3}}, 3, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e env
			var ops atomic.Int64
			c := &consumer{e: &e, ops: &ops}
			for _, s := range tc.seqs {
				c.see(&delivery{seq: s.seq, gap: s.gap, offline: s.offline}, false)
			}
			if c.count != tc.count || e.lost.Load() != tc.lost || e.dups.Load() != tc.dups || e.offline.Load() != tc.off {
				t.Fatalf("count %d lost %d dups %d offline %d, want %d %d %d %d",
					c.count, e.lost.Load(), e.dups.Load(), e.offline.Load(), tc.count, tc.lost, tc.dups, tc.off)
			}
		})
	}
}

// Header names match in any case, as HTTP says, without a lower-cased
// copy of each line.
func TestReadHeadHeaderCase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, resp string
		want       head
	}{
		{"lower", "HTTP/1.1 202 Accepted\r\ncontent-length: 9\r\n\r\n", head{length: 9}},
		{"canonical", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Request-Id: ab\r\n\r\n", head{length: 12}},
		{"upper chunked", "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: Chunked\r\n\r\n", head{length: -1, chunked: true}},
		{"ws accept", "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept:  k3y= \r\n\r\n", head{length: -1, accept: "k3y="}},
		{"short header", "HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n", head{length: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, got, err := readHead(bufio.NewReader(strings.NewReader(tc.resp)))
			if err != nil || got != tc.want {
				t.Errorf("readHead = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
