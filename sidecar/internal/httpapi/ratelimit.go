package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"golang.org/x/time/rate"
)

// writeLimiter keeps one token bucket per client for its writes: the
// client is its bearer token when it sends one (a principal may use
// many addresses, and many principals one proxy), else its address.
// Forwarded-for headers are not trusted: any client could set them.
type writeLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	lastSweep time.Time
}

// Bounds of the client table: every sweepEvery the buckets that are full
// again are dropped (a new one is the same), and a table that still
// holds maxClients is emptied, which only forgives.
const (
	sweepEvery = time.Minute
	maxClients = 100_000
)

// newWriteLimiter returns nil (no limit) for a rate of 0.
func newWriteLimiter(perSecond float64, burst int) *writeLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &writeLimiter{limit: rate.Limit(perSecond), burst: burst, clients: map[string]*rate.Limiter{}}
}

// allow takes one write of client at now, or says how long until the
// client may write again.
func (w *writeLimiter) allow(client string, now time.Time) (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.lastSweep) >= sweepEvery || len(w.clients) >= maxClients {
		w.sweep(now)
	}
	lim, ok := w.clients[client]
	if !ok {
		lim = rate.NewLimiter(w.limit, w.burst)
		w.clients[client] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

func (w *writeLimiter) sweep(now time.Time) {
	w.lastSweep = now
	for k, lim := range w.clients {
		if lim.TokensAt(now) >= float64(w.burst) {
			delete(w.clients, k)
		}
	}
	if len(w.clients) >= maxClients {
		clear(w.clients)
	}
}

// rateLimited answers 429 with Retry-After when the request is a write
// beyond its client's rate; nil otherwise (and without a limit).
func (s *Server) rateLimited(c *app.RequestContext) *apiError {
	if s.writes == nil || !isWrite(string(c.Method()), string(c.Path())) {
		return nil
	}
	ok, wait := s.writes.allow(clientKey(c), time.Now())
	if ok {
		return nil
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Response.Header.Set("Retry-After", strconv.Itoa(secs))
	return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many writes from this client; retry after " + strconv.Itoa(secs) + "s"}
}

// isWrite reports whether a request changes state: every method but
// GET, HEAD and OPTIONS, and the GET routes of the earlier systems that
// write (a tracker publish, the Fibonacci commands that move).
func isWrite(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return true
	}
	if method != http.MethodGet {
		return false
	}
	switch path {
	case "/fib/next", "/fib/previous", "/fib/reset":
		return true
	}
	user, ok := strings.CutPrefix(path, "/track/")
	return ok && user != "" && !strings.Contains(user, "/")
}

// clientKey names the client a write is counted against.
func clientKey(c *app.RequestContext) string {
	if a := c.GetHeader("Authorization"); len(a) > 0 {
		return "token " + string(a)
	}
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return "addr " + host
	}
	return "addr " + addr
}
