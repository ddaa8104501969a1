package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hzroute "github.com/cloudwego/hertz/pkg/route"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/queueapi"

	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"
	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Hertz's client keeps a process-wide connection-pool janitor.
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/common/timer.(*timer).run"),
		// The tests' Hertz WebSocket client keeps pool cleaners that sleep
		// out their period after the test ended (client side, not server).
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol/http1.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/app/client.(*Client).cleaner"),
		// Hertz keeps one process-wide goroutine refreshing the Date header.
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol.UpdateServerDate.func1"),
	)
}

// fakeEmitters implements Emitters over a real hub: "log" is the only
// kind, "fib" answers the Fibonacci commands from memory.
type fakeEmitters struct {
	hub *stream.Hub

	mu    sync.Mutex
	specs map[string]emitter.Spec
	order []string
	fibN  uint64
	n     int
}

func (f *fakeEmitters) Create(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error) {
	if req.Kind != "log" && req.Kind != "magic" && req.Kind != "fibonacci" {
		return emitter.Spec{}, fmt.Errorf("create: %w", emitter.ErrUnknownKind)
	}
	var cfg map[string]any
	if err := json.Unmarshal(req.Config, &cfg); err == nil {
		if r, ok := cfg["rate"].(float64); ok && r <= 0 {
			return emitter.Spec{}, &emitter.ValidationError{Fields: []emitter.FieldError{{Field: "rate", Message: "must be > 0"}}}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.ID == "" {
		f.n++
		req.ID = fmt.Sprintf("em-%04d", f.n)
	}
	if _, ok := f.specs[req.ID]; ok {
		return emitter.Spec{}, fmt.Errorf("create %s: %w", req.ID, emitter.ErrExists)
	}
	ret := emitter.DefaultRetention
	if req.Retention != nil {
		ret = *req.Retention
	}
	spec := emitter.Spec{ID: req.ID, Kind: req.Kind, Config: req.Config, Labels: req.Labels, Retention: ret, CreatedAt: time.Now().UTC(), Tenant: req.Tenant}
	if _, err := f.hub.Open(ctx, req.ID, stream.Config{Persist: ret.Persist, MaxEvents: ret.MaxEvents}); err != nil {
		return emitter.Spec{}, err
	}
	f.specs[req.ID] = spec
	f.order = append(f.order, req.ID)
	return spec, nil
}

func (f *fakeEmitters) Get(_ context.Context, id string) (emitter.Spec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.specs[id]
	if !ok {
		return emitter.Spec{}, fmt.Errorf("emitter %q: %w", id, emitter.ErrNotFound)
	}
	return s, nil
}

func (f *fakeEmitters) List(_ context.Context, flt emitter.Filter, after string, limit int) ([]emitter.Spec, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []emitter.Spec
	started := after == ""
	for _, id := range f.order {
		s, ok := f.specs[id]
		if !ok {
			continue
		}
		if !started {
			started = id == after
			continue
		}
		if flt.Kind != "" && s.Kind != flt.Kind {
			continue
		}
		match := true
		for k, v := range flt.Labels {
			match = match && s.Labels[k] == v
		}
		if !match {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, out[len(out)-1].ID
		}
		out = append(out, s)
	}
	return out, ""
}

func (f *fakeEmitters) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	_, ok := f.specs[id]
	delete(f.specs, id)
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("emitter %q: %w", id, emitter.ErrNotFound)
	}
	return f.hub.Remove(ctx, id, true)
}

func (f *fakeEmitters) Command(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error) {
	if _, err := f.Get(ctx, id); err != nil {
		return nil, err
	}
	if id != "fib" {
		return nil, fmt.Errorf("command %s: %w", name, emitter.ErrUnknownCommand)
	}
	f.mu.Lock()
	switch name {
	case "current":
	case "next":
		f.fibN++
	case "previous":
		if f.fibN > 0 {
			f.fibN--
		}
	case "reset":
		f.fibN = 0
	case "fail":
		f.mu.Unlock()
		return nil, &emitter.CommandError{Code: "bad_args", Message: "args rejected: " + string(args)}
	case "panic":
		f.mu.Unlock()
		panic("fake plugin bug")
	case "down":
		f.mu.Unlock()
		return nil, fmt.Errorf("command: %w", emitter.ErrUnavailable)
	default:
		f.mu.Unlock()
		return nil, fmt.Errorf("command %s: %w", name, emitter.ErrUnknownCommand)
	}
	n := f.fibN
	f.mu.Unlock()
	res := fmt.Appendf(nil, `{"position":%d,"value":"%s"}`, n, fibValue(n))
	st, _ := f.Stream(context.Background(), id)
	if _, err := st.Publish(ctx, []event.Draft{{Type: "fib", Data: res}}, nil); err != nil {
		return nil, err
	}
	return res, nil
}

func fibValue(n uint64) string {
	a, b := big.NewInt(0), big.NewInt(1)
	for i := uint64(0); i < n; i++ {
		a.Add(a, b)
		a, b = b, a
	}
	return a.String()
}

func (f *fakeEmitters) Stream(_ context.Context, id string) (*stream.Stream, error) {
	f.mu.Lock()
	_, ok := f.specs[id]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("emitter %q: %w", id, emitter.ErrNotFound)
	}
	st, ok := f.hub.Get(id)
	if !ok {
		return nil, fmt.Errorf("emitter %q: %w", id, emitter.ErrNotFound)
	}
	return st, nil
}

type fakePlugins []api.Plugin

func (p fakePlugins) Plugins() []api.Plugin { return p }

// env is a running server over a real bbolt store and hub.
type env struct {
	t    *testing.T
	srv  *Server
	hub  *stream.Hub
	ems  *fakeEmitters
	base string
	http *http.Client
	// closed: the test closed the server and checked Close's error itself.
	closed bool
}

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	return newEnvLog(t, o, slog.New(slog.DiscardHandler))
}

// newEnvLog is newEnv with the server logging to log.
func newEnvLog(t *testing.T, o Options, log *slog.Logger) *env {
	t.Helper()
	return newEnvAuth(t, o, log, nil)
}

// newEnvAuth is newEnvLog with a (nil: auth off) guarding the routes.
func newEnvAuth(t *testing.T, o Options, log *slog.Logger, a *auth.Authenticator) *env {
	t.Helper()
	return newEnvFull(t, o, log, a, nil)
}

// newEnvDeps is newEnvLog with tweak applied to the server's Deps.
func newEnvDeps(t *testing.T, o Options, log *slog.Logger, tweak func(*Deps)) *env {
	t.Helper()
	return newEnvFull(t, o, log, nil, tweak)
}

func newEnvFull(t *testing.T, o Options, log *slog.Logger, a *auth.Authenticator, tweak func(*Deps)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(store, slog.New(slog.DiscardHandler), stream.HubOptions{})
	ems := &fakeEmitters{hub: hub, specs: map[string]emitter.Spec{}}
	for _, id := range []string{"magic", "time", "fib"} {
		if _, err := ems.Create(ctx, emitter.CreateRequest{ID: id, Kind: "log", Retention: &emitter.Retention{}}); err != nil {
			t.Fatal(err)
		}
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	// The queues API is mounted as the app mounts it, so the OpenAPI test
	// sees every route the real server has.
	qd, err := store.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	qs := queue.NewService(qd, queue.Options{}, nil)
	var qapi *queueapi.API
	d := Deps{
		Emitters: ems, Streams: hub, Tracker: tracker.New(hub, tracker.Options{}),
		Shared:  []string{"magic", "time", "fib"},
		Plugins: fakePlugins{{Name: "log", Version: "1.0.0", PID: 42, State: "running", Instances: 1}},
		Log:     log,
		Auth:    a,
		Mount: []func(hzroute.IRoutes){func(r hzroute.IRoutes) {
			qapi = queueapi.Register(r, qs, a, queueapi.Options{}, nil)
		}},
	}
	if tweak != nil {
		tweak(&d)
	}
	srv, err := New(d, o)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	e := &env{t: t, srv: srv, hub: hub, ems: ems, base: "http://" + srv.Addr(),
		http: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(func() {
		e.http.CloseIdleConnections()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(cctx); err != nil && !e.closed {
			t.Errorf("close server: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = qapi.Close(cctx)
		_ = qs.Close(cctx)
		_ = hub.Close(cctx)
		_ = store.Close(cctx)
	})
	e.waitUp()
	return e
}

func (e *env) waitUp() {
	for i := 0; i < 200; i++ {
		resp, err := e.http.Get(e.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("server did not come up")
}

// do sends a request and returns status, headers and body.
func (e *env) do(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (e *env) publish(id string, n int) {
	e.t.Helper()
	st, err := e.ems.Stream(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	drafts := make([]event.Draft, n)
	for i := range drafts {
		drafts[i] = event.Draft{Type: "line", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	if _, err := st.Publish(context.Background(), drafts, nil); err != nil {
		e.t.Fatal(err)
	}
}

// sseFrame is one parsed SSE block.
type sseFrame struct {
	id, event, data, retry, comment string
}

type sseReader struct {
	resp *http.Response
	br   *bufio.Reader
}

func (e *env) openSSE(path string, hdr ...string) *sseReader {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &sseReader{resp: resp, br: bufio.NewReader(resp.Body)}
	e.t.Cleanup(func() { resp.Body.Close() })
	return r
}

// next reads one block (up to a blank line); io.EOF when the response ended.
func (r *sseReader) next() (sseFrame, error) {
	var f sseFrame
	got := false
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if got {
				return f, nil
			}
			continue
		}
		got = true
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			f.comment = strings.TrimSpace(value)
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			f.data += value
		case "retry":
			f.retry = value
		}
	}
}

// nextEvent skips comments and the retry block.
func (r *sseReader) nextEvent(t *testing.T) sseFrame {
	t.Helper()
	for i := 0; i < 1000; i++ {
		f, err := r.next()
		if err != nil {
			t.Fatalf("sse read: %v", err)
		}
		if f.id != "" || f.event != "" {
			return f
		}
	}
	t.Fatal("no event in 1000 blocks")
	return sseFrame{}
}

// dialWS opens a WebSocket with Hertz's client.
func (e *env) dialWS(path string) (*websocket.Conn, int) {
	e.t.Helper()
	cli, err := client.NewClient(client.WithDialer(standard.NewDialer()))
	if err != nil {
		e.t.Fatal(err)
	}
	req, resp := protocol.AcquireRequest(), protocol.AcquireResponse()
	req.SetRequestURI(e.base + path)
	req.SetMethod("GET")
	u := &websocket.ClientUpgrader{}
	u.PrepareRequest(req)
	if err := cli.Do(context.Background(), req, resp); err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusSwitchingProtocols {
		return nil, resp.StatusCode()
	}
	conn, err := u.UpgradeResponse(req, resp)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn, resp.StatusCode()
}
