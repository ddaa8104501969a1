// Package ratelimit bounds the writes of each client of the server: one
// token bucket (golang.org/x/time/rate) per client, shared by the HTTP
// API's routes and the queue API's REST routes and WebSocket frames, so
// a client has one allowance whichever way it writes.
package ratelimit

import (
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter keeps one token bucket per client. A nil *Limiter allows
// everything.
type Limiter struct {
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

// New returns a limiter of perSecond writes per client with bursts of
// burst (0: perSecond rounded up, at least 1); nil for a rate of 0 (no
// limit).
func New(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: burst, clients: map[string]*rate.Limiter{}}
}

// Allow takes one write of client at now, or says in whole seconds (at
// least 1) when the client may write again.
func (l *Limiter) Allow(client string, now time.Time) (ok bool, retryAfter int) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery || len(l.clients) >= maxClients {
		l.sweep(now)
	}
	lim, found := l.clients[client]
	if !found {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[client] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, max(1, int(math.Ceil(wait.Seconds())))
}

func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
	if len(l.clients) >= maxClients {
		clear(l.clients)
	}
}

// Client names the client a write counts against: its bearer token when
// it sent one (a principal may use many addresses, and many principals
// one proxy), else the host of its remote address. Forwarded-for headers
// are not trusted: any client could set them.
func Client(token, remoteAddr string) string {
	if token != "" {
		return "token " + token
	}
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return "addr " + host
	}
	return "addr " + remoteAddr
}
