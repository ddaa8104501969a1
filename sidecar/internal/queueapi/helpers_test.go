package queueapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/queueclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol.UpdateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/app/server.(*Hertz).Spin.(*Hertz).initOnRunHooks.func2.1"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/common/timer.(*timer).run"),
		goleak.IgnoreTopFunction("github.com/cloudwego/hertz/pkg/protocol/http1.(*HostClient).connsCleaner"),
		goleak.IgnoreTopFunction("time.Sleep"),
	)
}

const (
	clientA = "3381af92-2b9e-11e3-b191-71861300734c"
	clientB = "7bd0e5a2-9b43-4a4e-9c2d-6c9c3bb5e0f1"
	tokA    = "token-of-tenant-a-0123456789"
	tokB    = "token-of-tenant-b-0123456789"
	tokRO   = "token-read-only-a-0123456789"
)

// env is a real Hertz server with the queue API over a real bbolt file.
type env struct {
	t    testing.TB
	base string
	api  *API
	svc  *queue.Service
	st   *bolt.Store
	// commitNs sums the committer's transaction time (benchmarks report
	// how busy the single committer is).
	commitNs atomic.Int64
}

type envOpts struct {
	auth   bool
	limits queue.Limits
	api    Options
	nosync bool
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t}
	st, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "q.db"), bolt.Options{NoSync: o.nosync,
		OnCommit: func(d time.Duration, _ int) { e.commitNs.Add(int64(d)) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := st.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svc := queue.NewService(drv, queue.Options{Limits: o.limits, SweepInterval: 50 * time.Millisecond}, nil)
	var a *auth.Authenticator
	if o.auth {
		p := filepath.Join(t.TempDir(), "tokens.yaml")
		err := os.WriteFile(p, []byte(`tokens:
  - {token: `+tokA+`, tenant: tenant-a, scopes: [queues]}
  - {token: `+tokB+`, tenant: tenant-b, scopes: ["*"]}
  - {token: `+tokRO+`, tenant: tenant-a, scopes: [queues:read]}
`), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if a, err = auth.New(auth.Config{TokenFile: p}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.WithTransport(standard.NewTransporter), server.WithListener(ln),
		server.WithDisablePrintRoute(true), server.WithMaxRequestBodySize(8<<20))
	h.NoHijackConnPool = true
	api := Register(h, svc, a, o.api, nil)
	go func() { _ = h.Run() }()
	e.base, e.api, e.svc, e.st = "http://"+ln.Addr().String(), api, svc, st
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := api.Close(c); err != nil {
			t.Error(err)
		}
		_ = h.Shutdown(c)
		if err := svc.Close(c); err != nil {
			t.Error(err)
		}
		if err := st.Close(c); err != nil {
			t.Error(err)
		}
	})
	e.waitUp()
	return e
}

func (e *env) waitUp() {
	for range 200 {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("server did not come up")
}

var httpc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (r resp) errCode(t *testing.T) string {
	t.Helper()
	return strictError(t, r.code, r.body).Error.Code
}

// strictError reads body as the API's one error body, Zaqar's title and
// description included, with nothing else in it.
func strictError(t *testing.T, status int, body []byte) api.ErrorBody {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var e api.ErrorBody
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%d %s is not the error body: %v", status, body, err)
	}
	if e.Title != http.StatusText(status) || e.Description != e.Error.Message {
		t.Fatalf("%d %s: Zaqar title/description %q/%q", status, body, e.Title, e.Description)
	}
	return e
}

// do sends a REST request; hdr "" values are omitted.
func (e *env) do(method, path, body string, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := httpc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{code: res.StatusCode, hdr: res.Header, body: b}
}

func hdrs(project, client string) map[string]string {
	return map[string]string{"X-Project-Id": project, "Client-ID": client}
}

func (e *env) dial(hdr http.Header) *queueclient.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := queueclient.Dial(ctx, e.base+"/v2/ws", hdr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func wsDo(t *testing.T, c *queueclient.Client, action string, headers map[string]string, body any) queueclient.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Do(ctx, action, headers, body)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return r
}

func replyCode(t *testing.T, r queueclient.Reply) string {
	t.Helper()
	return strictError(t, r.Status, r.Body).Error.Code
}
