package queueclient

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/internal/queueapi"
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

const clientA = "3381af92-2b9e-11e3-b191-71861300734c"

// env is the real server the client talks to: the queue API on Hertz
// over a bbolt file.
type env struct {
	base string
	st   *bolt.Store
	// commitNs sums the committer's transaction time (the benchmark
	// reports how busy the single committer is).
	commitNs atomic.Int64
}

func newEnv(t testing.TB, nosync bool) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{}
	st, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "q.db"), bolt.Options{NoSync: nosync,
		OnCommit: func(d time.Duration, _ int) { e.commitNs.Add(int64(d)) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := st.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svc := queue.NewService(drv, queue.Options{}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.WithTransport(standard.NewTransporter), server.WithListener(ln), server.WithDisablePrintRoute(true))
	h.NoHijackConnPool = true
	qapi := queueapi.Register(h, svc, nil, queueapi.Options{}, nil)
	go func() { _ = h.Run() }()
	e.base, e.st = "http://"+ln.Addr().String(), st
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := qapi.Close(c); err != nil {
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
	for range 200 { // until the server accepts
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			return e
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server did not come up")
	return nil
}
