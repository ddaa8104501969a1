// Package httpapi is the sidecar's HTTP API on Hertz: the routes of the
// earlier systems (/log, /magic, /time, /echo, /fib, /track), the /api/v1
// surface, SSE and WebSocket streams, health, and /openapi.yaml. Every
// error goes through one mapper (errors.go) into api.ErrorBody,
// {"error":{"code":"…","message":"…","fields":[…]}}, including the
// answers Hertz makes before any route runs (unroutable requests,
// trailing-slash redirects, and requests it cannot read: 400, 408, 413,
// 431, rewritten on the connection).
package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hzroute "github.com/cloudwego/hertz/pkg/route"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/network/standard"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/crosssite"
	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
	streamhttp "github.com/sidestream/sidestream/sidecar/internal/stream"
)

// Emitters is what the API needs of the emitter manager (*emitter.Manager).
type Emitters interface {
	Create(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
	Get(ctx context.Context, id string) (emitter.Spec, error)
	List(ctx context.Context, f emitter.Filter, after string, limit int) ([]emitter.Spec, string)
	Delete(ctx context.Context, id string) error
	Command(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error)
	// Stream returns the emitter's stream (in cluster mode, a local mirror
	// of an emitter another node runs).
	Stream(ctx context.Context, id string) (*stream.Stream, error)
}

// Plugins lists the plugin processes.
type Plugins interface {
	Plugins() []api.Plugin
}

// Tracker is realtimer's per-user streams (core/tracker, on the hub of a
// single node or on JetStream in a cluster).
type Tracker interface {
	Stream(ctx context.Context, user string) (*stream.Stream, error)
	Publish(ctx context.Context, user string, data json.RawMessage) (uint64, error)
	// PublishString publishes s as a JSON string (?data=).
	PublishString(ctx context.Context, user, s string) (uint64, error)
}

// Deps are the parts the API serves.
type Deps struct {
	Emitters Emitters
	Streams  *stream.Hub
	Tracker  Tracker
	Plugins  Plugins
	// Shared are the ids of the built-in emitters the shared routes
	// (/magic, /time, /fib) serve: listed with shared=true and refused on
	// DELETE (409), since those routes would fail until a restart.
	Shared []string
	// Ready reports readiness for /readyz (nil func or nil error: ready).
	// Its error is mapped like a handler's: wrap stream.ErrStoreUnavailable
	// or emitter.ErrUnavailable for a 503.
	Ready func(ctx context.Context) error
	Log   *slog.Logger
	// Middleware runs on every request after panic recovery, before the
	// route (e.g. telemetry). Optional.
	Middleware []app.HandlerFunc
	// Metrics, if set, observes every SSE/WS subscriber. Optional.
	Metrics Metrics
	// MetricsHandler serves GET /metrics (Prometheus exposition); without
	// it the route answers 404.
	MetricsHandler http.Handler
	// Auth, if enabled, guards every route but the public ones (the
	// livedoc page, the OpenAPI document, health and readiness): a
	// missing or unknown token is answered 401, a token without the
	// route's scope 403, and emitters and tracker streams belong to the
	// token's tenant (access.go). Nil: auth off.
	Auth *auth.Authenticator
	// Cluster, if set, answers GET /api/v1/cluster; without it the node
	// reports itself alone.
	Cluster func(ctx context.Context) api.Cluster
	// Writes, if set, bounds each client's writes (429 with Retry-After
	// beyond); the queue API shares it, so a client has one allowance.
	Writes *ratelimit.Limiter
	// OnConnRefused, if set, is told every connection refused at accept
	// (Refused* reasons), for /metrics. Optional.
	OnConnRefused func(reason string)
	// Guests, if set, answers GET /api/v1/guests; without it the list is
	// empty.
	Guests func() []api.Guest
	// Mount registers more routes on the same server (the queues API);
	// they carry their own auth and are documented in web/openapi.yaml.
	Mount []func(r hzroute.IRoutes)
}

// Options tune the server.
type Options struct {
	// Listen is the address to bind ("127.0.0.1:9000"; ":0" picks a port).
	Listen string
	// Listener, if set, is bound already (Listen is then unused): the
	// caller binds first so a bad address fails before anything starts.
	// The server owns it from New on, and closes it.
	Listener net.Listener
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxHeaderBytes bounds a request's line and headers (default 1 MiB,
	// Hertz's): beyond it the answer is 431.
	MaxHeaderBytes int
	// HeartbeatInterval is the SSE comment and WS ping interval (default 15s).
	HeartbeatInterval time.Duration
	// SSERetry is the reconnect delay told to SSE clients (default 2s).
	SSERetry time.Duration
	// MaxWSFrame bounds client WebSocket messages (default 64 KiB).
	MaxWSFrame int64
	// TLS, if set, serves HTTPS on the listener (HTTP/1.1: Hertz's
	// HTTP/2 is a separate protocol server without the hijacking the
	// WebSocket routes need).
	TLS *tls.Config
	// CrossSite guards against other web origins (Host, Origin) and
	// answers CORS for its allowlist; the zero value allows same-origin
	// and non-browser requests only.
	CrossSite crosssite.Policy
	// WriteTimeout bounds one write to an SSE or WebSocket subscriber
	// (default 10s): a client that stops reading is dropped after it
	// instead of holding its stream, goroutine and buffers until it
	// hangs up.
	WriteTimeout time.Duration
	// SSEWriters is the writer goroutines (shards) that deliver to SSE
	// subscribers over plain sockets (default: 2 per GOMAXPROCS).
	SSEWriters int
	// MaxConns bounds the open connections (streams included): one more
	// is answered 503 with Retry-After and closed, so the process keeps
	// the file descriptors it needs (default: derived from the open-file
	// limit, DefaultMaxConns; negative: unlimited).
	MaxConns int
	// MaxConnsPerIP bounds the open connections of one client address
	// the same way (default 0: no per-address limit, since behind a
	// reverse proxy every client shares its address).
	MaxConnsPerIP int
	// Compat names the earlier systems whose exact paths are served too
	// (CompatSystems; CheckCompat says which may go together).
	Compat []string
}

func (o Options) withDefaults() Options {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:9000"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 1 << 20
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 15 * time.Second
	}
	if o.SSERetry <= 0 {
		o.SSERetry = 2 * time.Second
	}
	if o.MaxWSFrame <= 0 {
		o.MaxWSFrame = 64 << 10
	}
	if o.SSEWriters <= 0 {
		o.SSEWriters = fanShards * runtime.GOMAXPROCS(0)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns()
	}
	return o
}

// Server is the HTTP API server.
type Server struct {
	d  Deps
	o  Options
	h  *server.Hertz
	ln *trackingListener

	routes routeTable
	// writeRoutes are the routes whose scope lets them change state,
	// GET ones included ("GET /fib/next"), for the cross-site check.
	writeRoutes map[string]bool
	log         *slog.Logger

	// hangups tells SSE handlers their client left (nil: a reader
	// goroutine per response does).
	hangups *streamhttp.HangupWatcher
	// streams are the SSE responses served after their handler returned.
	streams streamGroup
	// fan is the writer shards that deliver to SSE subscribers.
	fan *streamhttp.Fan
	// filters compiles each distinct ?filter= once for every route.
	filters *filter.Cache

	// ctx ends every stream response when the server closes.
	ctx    context.Context
	cancel context.CancelFunc

	serving   atomic.Bool
	serveDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New builds the server and binds its listener, so Addr is known and a port
// conflict fails here.
func New(d Deps, o Options) (*Server, error) {
	if d.Emitters == nil || d.Streams == nil || d.Tracker == nil {
		return nil, errors.New("httpapi: Emitters, Streams and Tracker are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	o = o.withDefaults()
	routeHertzLog(d.Log)
	raw := o.Listener
	var err error
	if raw == nil {
		if raw, err = net.Listen("tcp", o.Listen); err != nil {
			return nil, fmt.Errorf("httpapi: listen %s: %w", o.Listen, err)
		}
	}
	ln := newTrackingListener(raw, connLimits{total: max(o.MaxConns, 0), perIP: max(o.MaxConnsPerIP, 0),
		onRefuse: d.OnConnRefused, onAcceptErr: acceptErrLogger(d.Log)})
	d.Log.Info("connection limits", "max_connections", o.MaxConns, "max_connections_per_ip", o.MaxConnsPerIP)
	s := &Server{d: d, o: o, ln: ln, log: d.Log, serveDone: make(chan struct{}),
		fan: streamhttp.NewFan(o.SSEWriters)}
	if s.filters, err = filter.NewCache(filter.DefaultCacheSize); err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	if s.hangups, err = streamhttp.NewHangupWatcher(); err != nil {
		d.Log.Warn("no hangup watcher: one reader goroutine per SSE response", "err", err)
		s.hangups = nil
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.h = server.New(
		server.WithTransport(standard.NewTransporter),
		server.WithListener(ln),
		server.WithTLS(o.TLS),
		server.WithOnAccept(ln.onAccept),
		server.WithHandleMethodNotAllowed(true),
		// noRoute redirects to the path with the trailing slash toggled
		// itself, with the error body; Hertz's redirect has none.
		server.WithRedirectTrailingSlash(false),
		server.WithMaxHeaderBytes(o.MaxHeaderBytes),
		// Not WithSenseClientDisconnection: its watcher races with the
		// connection's release when a response write fails (seen with
		// -race on v0.10.4). Stream handlers watch their client themselves.
		server.WithDisablePrintRoute(true),
		// Hertz answers bodies beyond its own limit with a plain 413; ours
		// is higher so bodies just over MaxBodyBytes get the JSON 413.
		server.WithMaxRequestBodySize(int(max(4*o.MaxBodyBytes, o.MaxBodyBytes+64<<10))),
		server.WithIdleTimeout(2*time.Minute),
		server.WithExitWaitTime(time.Minute), // Close's ctx is the real bound
	)
	s.h.NoHijackConnPool = true // hijacked WS conns must not go back to Hertz's pool
	if err := s.register(); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return s, nil
}

// Addr returns the bound address ("127.0.0.1:40123").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Close; it returns nil after Close.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("httpapi: Serve called twice")
	}
	defer close(s.serveDone)
	if s.ctx.Err() != nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	})
	defer stop()
	if err := s.h.Run(); err != nil && s.ctx.Err() == nil {
		return fmt.Errorf("httpapi: serve: %w", err)
	}
	return nil
}

// Close stops accepting, ends every stream response (SSE responses end,
// WebSockets get close 1001), lets requests in flight finish, closes idle
// keep-alive connections, and force-closes what remains when ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown(ctx) })
	return s.closeErr
}

func (s *Server) shutdown(ctx context.Context) (retErr error) {
	s.cancel()
	streamsDone := s.streams.close() // after cancel: a stream added meanwhile ends at once
	if s.hangups != nil {
		// After every handler ended: they stop their watches first. Its
		// loop stops at once when woken, so it gets a bound of its own:
		// Close's ctx may have ended already (streams force-closed), and
		// that is reported once, below, not as the watcher's failure.
		defer func() {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			retErr = errors.Join(retErr, s.hangups.Close(hctx))
		}()
	}
	if !s.serving.Load() {
		return s.ln.Close()
	}
	done := make(chan error, 1)
	go func() { done <- s.h.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		// Idle keep-alive connections would hold Shutdown until their idle
		// timeout: end their wait for a next request, repeatedly, since
		// Hertz re-arms the deadline between requests.
		s.ln.expireIdle()
		select {
		case err = <-done:
			break wait
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-tick.C:
		}
	}
	// SSE streams, ending since cancel, outlive their Hertz handlers.
	select {
	case <-streamsDone:
	case <-ctx.Done():
		// A stream stuck in a write (a client that reads nothing) is
		// force-closed below: as for a stuck handler, say ctx ended.
		if err == nil {
			err = ctx.Err()
		}
	}
	_ = s.ln.Close() // in case Shutdown found the engine not running yet
	s.ln.closeAll()
	s.ln.waitRefusals()
	if werr := waitStreams(streamsDone); werr != nil {
		err = errors.Join(err, werr)
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	err = errors.Join(err, s.fan.Close(fctx))
	fcancel()
	select {
	case <-s.serveDone:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("httpapi: close: %w", err)
	}
	return nil
}

// fanShards is the SSE writer shards per processor: a few, so that a
// wake-up of a hot stream makes a handful of goroutines runnable, and more
// than one per processor, so that one shard's slow turn leaves the others.
const fanShards = 2

// waitStreams waits for the SSE streams once their sockets are closed:
// their writes fail at once, so they end promptly; the bound only keeps a
// bug from hanging Close.
func waitStreams(done <-chan struct{}) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return errors.New("SSE streams still running after their sockets were closed")
	}
}
