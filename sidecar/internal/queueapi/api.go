// Package queueapi serves the queues of core/queue with OpenStack Zaqar
// v2 semantics: REST routes under /v2/queues and a WebSocket at /v2/ws
// whose frames {"action","headers","body"} reach every operation, plus
// subscriptions that push newly posted messages to a consumer through
// claims (at-least-once). REST and WebSocket share one implementation of
// each operation (ops.go), so both answer identically. Its Go client is
// sidecar/queueclient; errors have the API's one body (sidecar/api).
package queueapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
)

// Scopes a token needs (auth on).
const (
	ScopeRead  = auth.ScopeQueuesRead
	ScopeWrite = auth.ScopeQueuesWrite
)

// Options tune the API.
type Options struct {
	// MaxBodyBytes bounds REST bodies and WebSocket frames (default:
	// the post limit plus 64 KiB of envelope).
	MaxBodyBytes int
	// MaxInFlight bounds the frames one WebSocket handles at once
	// (default 64); the reader waits when it is reached.
	MaxInFlight int
	// Heartbeat is the WebSocket ping interval (default 15s).
	Heartbeat time.Duration
	// WriteTimeout bounds one WebSocket write (default 10s).
	WriteTimeout time.Duration
	// PollInterval is how often an idle subscription looks for messages
	// whose claims expired (default 1s); posts wake it at once.
	PollInterval time.Duration
	// MaxSubscriptions bounds the subscriptions of one connection (default 16).
	MaxSubscriptions int
	// Writes, if set, bounds each client's write frames over /v2/ws
	// (429 rate_limited beyond), with the HTTP API's allowance: REST
	// writes are limited by the HTTP server in front of every route.
	Writes *ratelimit.Limiter
}

func (o Options) withDefaults(l queue.Limits) Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = l.MaxPostBytes + 64<<10
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 16
	}
	return o
}

// API is the mounted queue API. Close ends its WebSocket sessions.
type API struct {
	q    *queue.Service
	a    *auth.Authenticator
	o    Options
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc
	mu   sync.Mutex // orders enter (wg.Add) before Close's Wait
	wg   sync.WaitGroup
}

// Register mounts the REST routes and /v2/ws on r. a may be nil or
// disabled (auth off: the tenant is X-Project-Id alone).
func Register(r route.IRoutes, q *queue.Service, a *auth.Authenticator, opts Options, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api := &API{q: q, a: a, o: opts.withDefaults(q.Limits()), log: log}
	api.ctx, api.stop = context.WithCancel(context.Background())
	api.routes(r)
	return api
}

// Close ends every WebSocket session (close 1001) and waits for their
// goroutines, or for ctx.
func (api *API) Close(ctx context.Context) error {
	api.mu.Lock()
	api.stop()
	api.mu.Unlock()
	done := make(chan struct{})
	go func() { api.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queueapi: close: %w", ctx.Err())
	}
}

// errorBody is an answer's JSON, REST and WebSocket alike: the API's one
// error body, plus the title and description Zaqar clients read.
func errorBody(e *httperr.Error) encoded {
	b := e.Body()
	b.Title, b.Description = http.StatusText(e.Status), e.Message
	return b.Encode()
}

// writeError answers a REST request with {"error":{…}}.
func (a *API) writeError(c *app.RequestContext, err error) {
	ae := httperr.For(err)
	if ae.Status >= 500 {
		a.log.Error("queue request failed", "path", string(c.Path()), "err", err)
	}
	ae.SetHeaders(&c.Response.Header)
	c.Data(ae.Status, "application/json; charset=utf-8", errorBody(ae))
	c.Abort()
}
