package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

// Transport is how a follower receives events.
type Transport string

// The transports of Follow.
const (
	TransportSSE Transport = "sse"
	TransportWS  Transport = "ws"
)

// FollowOptions tune Follow and FollowURL.
type FollowOptions struct {
	// Transport is SSE (default) or WS. FollowURL uses WS for ws:// and
	// wss:// URLs whatever this says.
	Transport Transport
	// After starts after this seq (0: from the oldest event kept). Nil:
	// Follow starts at the stream's current head (only new events);
	// FollowURL uses whatever the URL asks for.
	After *uint64
	// MinBackoff is the base of the reconnect backoff (default 100ms). A
	// server's SSE retry: raises it.
	MinBackoff time.Duration
	// MaxBackoff caps one reconnect wait (default 5s).
	MaxBackoff time.Duration
	// IdleTimeout drops a connection that carried nothing, not even a
	// heartbeat, for this long (default 45s: three server heartbeats).
	IdleTimeout time.Duration
	// MaxEventBytes bounds one event (default 4 MiB).
	MaxEventBytes int
	// MaxRate, if not zero, asks the server for at most this many events
	// a second (?max_rate=): it leaves the rest out and says so with
	// skipped markers (api.Event.IsSkipped), which fn receives.
	MaxRate uint64
	// Filter, if not empty, is a CEL expression over the envelope
	// (stream, seq, type, time) and the JSON data (data.field) that the
	// server delivers only the matching events of (?filter=, replacing
	// one a FollowURL URL carries). The server refuses a bad expression
	// with a 400 invalid_filter *APIError naming its position.
	Filter string
	// OnReconnect, if set, is called before each reconnect wait.
	OnReconnect func(Reconnect)

	rnd func(n int64) int64 // jitter source; tests pin it
}

// Reconnect describes one reconnect of a follower.
type Reconnect struct {
	Attempt int           // 1 for the first reconnect after a working connection
	Delay   time.Duration // the wait before it
	After   uint64        // it resumes after this seq
	Err     error         // why the previous connection ended
}

func (o FollowOptions) withDefaults() FollowOptions {
	if o.Transport == "" {
		o.Transport = TransportSSE
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 45 * time.Second
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = DefaultMaxSSEEvent
	}
	return o
}

// ErrProtocol is returned when the server's answer is not a stream this
// client understands (wrong content type, malformed frames); retrying
// would not help.
var ErrProtocol = errors.New("apiclient: protocol error")

// HandlerError wraps the error a Follow handler returned.
type HandlerError struct{ Err error }

func (e *HandlerError) Error() string { return "apiclient: handler: " + e.Err.Error() }
func (e *HandlerError) Unwrap() error { return e.Err }

// Follow calls fn with every event of stream, in seq order, each once,
// until ctx ends (ctx.Err()), fn fails (*HandlerError), or the server
// answers with a permanent error (*APIError such as 404, or ErrProtocol).
// When the connection drops or the server goes away it reconnects with
// backoff and resumes after the last seq delivered; events the server
// sends again are skipped. A gap marker from the server (history older
// than it keeps) is passed to fn as an Event with IsGap, a reset marker
// (a stream without history started over at a new seq) as one with
// IsReset; after either, following continues after its Seq. With
// MaxRate, what the server left out comes as an Event with IsSkipped, and
// following continues after its range. With Filter, fn receives only the
// matching events (and the markers), so seqs may jump.
func (c *Client) Follow(ctx context.Context, stream string, o FollowOptions, fn func(api.Event) error) error {
	o = o.withDefaults()
	if stream == "" {
		return errors.New("apiclient: empty stream name")
	}
	if o.Transport != TransportSSE && o.Transport != TransportWS {
		return fmt.Errorf("apiclient: unknown transport %q (want sse or ws)", o.Transport)
	}
	f := &follower{c: c, o: o, fn: fn, stream: stream}
	if o.After != nil {
		f.last, f.known = *o.After, true
	} else {
		f.needHead = true
	}
	u, err := url.Parse(c.url("/api/v1/streams/"+url.PathEscape(stream)+"/"+string(o.Transport), nil))
	if err != nil {
		return fmt.Errorf("apiclient: %w", err)
	}
	f.target = u
	return f.run(ctx)
}

// FollowURL is Follow on a full stream URL (an SSE route such as
// http://host/sse/log/ID, or a WebSocket route as ws://host/ws/track/u or
// http://host/… with Transport WS). Without After and without ?after= in
// the URL, events published before the first one arrives may be missed.
func (c *Client) FollowURL(ctx context.Context, rawURL string, o FollowOptions, fn func(api.Event) error) error {
	o = o.withDefaults()
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("apiclient: stream URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
		o.Transport = TransportWS
		u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	case "http", "https":
	default:
		return fmt.Errorf("apiclient: stream URL %q: want http(s):// or ws(s)://", rawURL)
	}
	if u.Host == "" {
		return fmt.Errorf("apiclient: stream URL %q has no host", rawURL)
	}
	f := &follower{c: c, o: o, fn: fn, stream: streamFromPath(u.Path), target: u}
	q := u.Query()
	for _, k := range []string{"last_event_id", "after"} {
		if v := q.Get(k); v != "" && !f.known {
			seq, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("apiclient: stream URL: %s=%q is not a seq", k, v)
			}
			f.last, f.known = seq, true
		}
	}
	if o.After != nil {
		f.last, f.known = *o.After, true
	}
	return f.run(ctx)
}

// streamFromPath names the stream of a known stream route.
func streamFromPath(p string) string {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	n := len(seg)
	switch {
	case n >= 3 && seg[n-3] == "streams":
		return seg[n-2] // /api/v1/streams/{stream}/sse|ws
	case n >= 2 && seg[n-2] == "track":
		return "track:" + seg[n-1]
	case n >= 1:
		return seg[n-1] // /sse/log/{id}, /magic, /time, /sse/fib
	}
	return ""
}

// follower is the state of one Follow: where it connects and the last
// seq it delivered.
type follower struct {
	c      *Client
	o      FollowOptions
	fn     func(api.Event) error
	stream string
	target *url.URL

	last  uint64
	known bool // last is meaningful (else: no resume point yet)
	// needHead: start at the stream's head, looked up before connecting
	// so that events published while (re)connecting are not lost.
	needHead bool
	retry    time.Duration // the server's SSE retry:, 0 if none
}

// run connects until something permanent happens.
func (f *follower) run(ctx context.Context) error {
	attempt := 0
	for {
		var (
			delivered int
			err       error
		)
		switch {
		case f.needHead:
			err = f.resolveHead(ctx)
		case f.o.Transport == TransportWS:
			delivered, err = f.connectWS(ctx)
		default:
			delivered, err = f.connectSSE(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if permanent(err) {
			return err
		}
		if err == nil {
			continue // the head is known: connect now
		}
		if delivered > 0 {
			attempt = 0
		}
		b := backoff{base: max(f.o.MinBackoff, f.retry), max: f.o.MaxBackoff, rnd: f.o.rnd}
		delay := b.delay(attempt)
		attempt++
		if f.o.OnReconnect != nil {
			f.o.OnReconnect(Reconnect{Attempt: attempt, Delay: delay, After: f.last, Err: err})
		}
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// resolveHead sets the resume point to the stream's newest seq (this also
// turns an unknown stream into a 404).
func (f *follower) resolveHead(ctx context.Context) error {
	page, err := f.c.Events(ctx, f.stream, 0, 1)
	if err != nil {
		return err
	}
	f.last, f.known, f.needHead = page.Head, true, false
	return nil
}

func permanent(err error) bool {
	var (
		ae *APIError
		he *HandlerError
	)
	switch {
	case errors.As(err, &he), errors.Is(err, ErrProtocol):
		return true
	case errors.As(err, &ae):
		return !ae.Temporary()
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// resumeURL is the target with the resume point in its query. Over SSE
// it asks for every event's type (?event_types=1): the server leaves it
// out by default so that EventSource.onmessage works, and Event.Type is
// part of what this client delivers.
func (f *follower) resumeURL() string {
	u := *f.target
	q := u.Query()
	q.Del("last_event_id")
	q.Del("from")
	if f.known {
		q.Set("after", strconv.FormatUint(f.last, 10))
	}
	if f.o.Transport == TransportSSE {
		q.Set("event_types", "1")
	}
	if f.o.MaxRate > 0 {
		q.Set("max_rate", strconv.FormatUint(f.o.MaxRate, 10))
	}
	if f.o.Filter != "" {
		q.Set("filter", f.o.Filter)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// accept delivers ev unless it was delivered already. It reports whether
// ev was new.
func (f *follower) accept(ev api.Event) (bool, error) {
	sk, skipped := ev.SkippedRange()
	if skipped {
		// Its seq is the one before its range, which may be the last
		// event delivered: whether it is new is its range's to say.
		if f.known && sk.To <= f.last {
			return false, nil
		}
		if f.known && sk.From <= f.last {
			sk.Skipped = min(sk.Skipped, sk.To-f.last)
			sk.From = f.last + 1
			ev.Seq = f.last
			ev.Data, _ = json.Marshal(sk)
		}
	} else if f.known && ev.Seq <= f.last {
		return false, nil // sent again after a resume: already delivered
	}
	if ev.Stream == "" {
		ev.Stream = f.stream
	}
	if from, to, ok := ev.GapRange(); ok && f.known && from <= f.last {
		// Part of the gap was delivered before: report only the rest.
		ev.Data, _ = json.Marshal(api.Gap{From: f.last + 1, To: to})
	}
	if err := f.fn(ev); err != nil {
		return false, &HandlerError{Err: err}
	}
	f.last, f.known = ev.Seq, true
	if skipped {
		// Resume after the range reported: no event is both reported
		// skipped and delivered.
		f.last = sk.To
	}
	return true, nil
}
