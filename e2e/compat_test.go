package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hertz-contrib/websocket"
)

// rawAnswer is one HTTP answer read off the wire.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// replay sends req, a request exactly as a tool writes it ("HOST" stands
// for the sidecar's address), on a new connection and reads the answer.
// The earlier systems' documented commands (curl, ab, vegeta, the
// realtimer's and Gatling's clients) are replayed this way: the tools are
// not installed on every machine, their requests are what counts.
func replay(t *testing.T, sc *sidecar, req string) rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", sc.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, strings.ReplaceAll(req, "HOST", sc.addr)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: body: %v", req, err)
	}
	return rawAnswer{resp.StatusCode, resp.Header, string(b)}
}

// curlGET is what `curl URL` (curl 7/8) sends.
func curlGET(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: HOST\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
}

// The realtimer's README, replayed: `curl http://localhost:8080/testUserId?data=testData`,
// the vegeta target `GET http://localhost:8080/testUserId?data=testData`,
// and its WebSocket clients on /ws (the CLI's default address and
// html5client.html's), which see every publish as
// {"accountId","data","timestamp"} and filter by accountId themselves.
func TestCompatRealtimerReplay(t *testing.T) {
	sc := startSidecar(t, t.TempDir(), "--compat", "realtimer")
	ws := dialWS(t, sc.URL("/ws"))
	defer ws.Close()

	// curl http://localhost:8080/testUserId?data=testData
	if a := replay(t, sc, curlGET("/testUserId?data=testData")); a.status != http.StatusOK || a.body != "ok" {
		t.Fatalf("curl publish: %d %q, want 200 ok", a.status, a.body)
	}
	// echo "GET http://localhost:8080/testUserId?data=testData" | vegeta attack -rate=500 ...:
	// vegeta's Go client sends the target with keep-alive, many in flight.
	const attacks = 40
	var wg sync.WaitGroup
	errs := make(chan error, attacks)
	for range attacks {
		wg.Go(func() {
			resp, err := http.Get(sc.URL("/testUserId?data=testData"))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "ok" {
				errs <- fmt.Errorf("vegeta target: %d %q", resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The WebSocket client saw every publish in the realtimer's shape.
	for i := range attacks + 1 {
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("ws frame %d: %v", i, err)
		}
		var ev struct {
			AccountID string `json:"accountId"`
			Data      string `json:"data"`
			Timestamp int64  `json:"timestamp"`
		}
		dec := json.NewDecoder(strings.NewReader(string(msg)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil || ev.AccountID != "testUserId" || ev.Data != "testData" ||
			ev.Timestamp < time.Now().Add(-time.Hour).UnixMilli() {
			t.Fatalf("ws frame %d: %s (%v), want the realtimer's event", i, msg, err)
		}
	}
	// Every publish is in the user's tracker stream too.
	var page struct{ Head uint64 }
	if do(t, http.MethodGet, sc.URL("/api/v1/streams/track:testUserId/events?limit=1"), "", &page); page.Head != attacks+1 {
		t.Errorf("track:testUserId head %d, want %d", page.Head, attacks+1)
	}
	// The product's routes are not shadowed by GET /{user}.
	if a := replay(t, sc, curlGET("/healthz")); a.status != http.StatusOK || !strings.Contains(a.body, `"ok"`) {
		t.Errorf("GET /healthz with realtimer compat: %d %s", a.status, a.body)
	}
	if a := replay(t, sc, curlGET("/someone")); a.status != http.StatusBadRequest || !strings.Contains(a.body, `"field":"data"`) {
		t.Errorf("GET /someone without data: %d %s, want 400 naming data", a.status, a.body)
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

// pexservice's README, replayed: `ab -c 10 -n 10000 -r http://localhost:8081/`
// (ab speaks HTTP/1.0 without keep-alive) and its endpoint table, each
// answering the number as plain text.
func TestCompatPexserviceReplay(t *testing.T) {
	sc := startSidecar(t, t.TempDir(), "--compat", "pexservice")
	// What ab sends for each of its requests, at concurrency 10.
	const ab = "GET / HTTP/1.0\r\nHost: HOST\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n"
	var wg sync.WaitGroup
	answers := make(chan rawAnswer, 30)
	for range 10 {
		wg.Go(func() {
			for range 3 {
				answers <- replay(t, sc, ab)
			}
		})
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.status != http.StatusOK || !strings.Contains(a.body, "/next") || !strings.Contains(a.body, "/reset") {
			t.Fatalf("ab GET /: %d %q, want the endpoints described", a.status, a.body)
		}
	}
	for i, step := range []struct{ path, want string }{
		{"/reset", "0\n"}, {"/current", "0\n"}, {"/next", "1\n"}, {"/next", "1\n"}, {"/next", "2\n"},
		{"/next", "3\n"}, {"/next", "5\n"}, {"/previous", "3\n"}, {"/current", "3\n"},
	} {
		a := replay(t, sc, curlGET(step.path))
		if a.status != http.StatusOK || a.body != step.want || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("step %d GET %s: %d %q (%s), want %q as text", i, step.path, a.status, a.body, a.header.Get("Content-Type"), step.want)
		}
	}
	// The same durable sequence as /fib.
	var fib struct{ Position int }
	if do(t, http.MethodGet, sc.URL("/fib/current"), "", &fib); fib.Position != 4 {
		t.Errorf("/fib/current position %d, want 4", fib.Position)
	}
}

// The SSE prototype's Gatling simulation, replayed: create a log with
// PUT /log, then users GET /log/sse/{id} with the headers Gatling's sse()
// sets (Accept: text/event-stream, Cache-Control: no-cache) and read
// events on the default type. /magic is paced as the prototype's (4/s by
// default) with millisecond timestamps.
func TestCompatSSEPrototypeReplay(t *testing.T) {
	dir := t.TempDir()
	sc := startSidecar(t, dir, "--compat", "sse-prototype")
	a := replay(t, sc, "PUT /log HTTP/1.1\r\nHost: HOST\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Length: 12\r\nContent-Type: application/json\r\n\r\n{\"rate\":200}")
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(a.body), &created); a.status != http.StatusCreated || err != nil {
		t.Fatalf("PUT /log: %d %s", a.status, a.body)
	}
	req, err := http.NewRequest(http.MethodGet, sc.URL("/log/sse/"+created.ID+"?from=start"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &sseStream{resp: resp, sc: bufio.NewScanner(resp.Body), cancel: func() {}}
	defer s.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /log/sse/{id}: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for i := uint64(1); i <= 20; i++ {
		ev, err := s.Next()
		if err != nil || ev.ID != i || ev.Event != "" || !strings.Contains(ev.Data, `"line":`) {
			t.Fatalf("event %d: %+v %v, want id %d on the default type", i, ev, err, i)
		}
	}

	ms := regexp.MustCompile(`"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)
	magic := openSSE(t, sc.URL("/magic"), "")
	for range 3 {
		ev, err := magic.Next()
		if err != nil || !ms.MatchString(ev.Data) {
			t.Fatalf("/magic event %+v %v, want a millisecond timestamp", ev, err)
		}
	}
	if r := magicRate(t, sc); r != 4 {
		t.Errorf("shared magic emitter at %v/s, want 4 (the prototype's pace)", r)
	}
	// magic_rate is a key: a restart with another value re-paces it.
	if code := sc.Stop(t); code != 0 {
		t.Fatalf("SIGTERM exit %d", code)
	}
	sc = startSidecar(t, dir, "--compat", "sse-prototype", "--magic-rate", "10")
	if r := magicRate(t, sc); r != 10 {
		t.Errorf("after --magic-rate 10: magic emitter at %v/s", r)
	}
	if ev, err := openSSE(t, sc.URL("/magic"), "").Next(); err != nil || !ms.MatchString(ev.Data) {
		t.Fatalf("/magic after restart: %+v %v", ev, err)
	}
}

// magicRate is the configured rate of the shared magic emitter.
func magicRate(t *testing.T, sc *sidecar) float64 {
	t.Helper()
	var spec struct {
		Config struct{ Rate float64 }
	}
	if code := do(t, http.MethodGet, sc.URL("/api/v1/emitters/magic"), "", &spec); code != http.StatusOK {
		t.Fatalf("GET /api/v1/emitters/magic: %d", code)
	}
	return spec.Config.Rate
}

// Systems that fit together are served at once; a colliding choice or an
// unknown name is refused at start with a message and a non-zero exit.
func TestCompatChoices(t *testing.T) {
	sc := startSidecar(t, t.TempDir(), "--compat", "realtimer,sse-prototype")
	if a := replay(t, sc, curlGET("/u1?data=x")); a.status != http.StatusOK {
		t.Errorf("realtimer beside sse-prototype: %d %s", a.status, a.body)
	}
	if a := replay(t, sc, curlGET("/log/sse/none")); a.status != http.StatusNotFound {
		t.Errorf("sse-prototype beside realtimer: %d %s", a.status, a.body)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--compat", "realtimer", "--compat", "pexservice"}, "realtimer and pexservice collide"},
		{[]string{"--compat", "zaqar"}, `unknown system "zaqar"`},
	} {
		p := launch(t, t.TempDir(), tc.args...)
		if code := p.Wait(t); code == 0 {
			t.Errorf("serve %v exited 0", tc.args)
		}
		if logs := p.Logs(); !strings.Contains(logs, tc.want) {
			t.Errorf("serve %v: output lacks %q:\n%s", tc.args, tc.want, logs)
		}
	}
}
