// Package bench is the load generator behind `sidestream bench`: the load
// scenarios of the systems sidestream replaces (Gatling's SSE users,
// vegeta's tracker publishes, ab's Fibonacci requests) plus fan-out, idle
// connections and queues. It speaks raw HTTP/1.1, SSE and WebSocket over
// TCP so that the generator, sharing the machine with the server, spends
// as little CPU per delivery as possible; latencies go into HDR
// histograms; the target's CPU and RSS are read from /proc when it runs on
// this machine. A run yields a Report (JSON, plain text, HTML).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sidestream/sidestream/sidecar/apiclient"
)

// Errors of the package.
var (
	// ErrUsage is a bad scenario name or option.
	ErrUsage = errors.New("usage")
	// ErrNotDone is a scenario the server cannot run yet.
	ErrNotDone = errors.New("scenario not available")
)

// Options configure a run. Zero values take each scenario's defaults.
type Options struct {
	// Target is the server's base URL (default http://127.0.0.1:9000).
	// Publishers (emitters, tracker publishes, queue producers) use it.
	Target string
	// Token is sent as "Authorization: Bearer" on every request and
	// connection when the server has auth on.
	Token string
	// Targets are the servers that subscribers (fanout, sse-users,
	// track) and queue consumers connect to, round-robin, when they are
	// other nodes of Target's cluster (empty: Target). Naming Target
	// among them too puts subscribers on the publisher's node as well:
	// fanout then reports same-node and cross-node latency apart.
	Targets []string
	// PID is the server process; 0 finds it by the target's port when
	// the target is on this machine, -1 disables process stats.
	PID int
	// Duration is the measured window (default 10s; idle: how long the
	// connections are held).
	Duration time.Duration
	// Warmup runs load before the window opens (0: none).
	Warmup time.Duration
	// Subscribers, Rate and Transport ("sse" or "ws", idle also "both")
	// shape fanout and idle.
	Subscribers int
	Rate        float64
	Transport   string
	// Streams spreads fanout's subscribers over this many streams, each
	// with its events at Rate (default 1). Publish says who makes them:
	// "magic" (an emitter per stream, the default) or "http" (the bench
	// POSTs them to /track/{user}; the latency is then from the publish).
	Streams int
	Publish string
	// Users and Events shape sse-users (and the users of track).
	Users, Events int
	// Concurrency is the number of request loops (track, fib).
	Concurrency int
	// Conns is the idle connection count.
	Conns int
	// Producers and Consumers shape queue; Size is the message size,
	// Batch the messages per post and per claim (1-100, default 50) and
	// AckMax the most ids one delete carries (default the server's
	// default max_messages_per_page, 100).
	Producers, Consumers, Size, Batch, AckMax int
	// MaxOps bounds the requests or messages of the measured window (0:
	// only Duration); warm-up load does not count, so a window is never
	// empty because the warm-up used them all.
	MaxOps int64
	// OpsRate paces track's publishes and queue's posted messages to
	// this many per second for the whole run (0: as fast as they go), for
	// long runs at a steady load (a soak).
	OpsRate float64
	// ConnectConcurrency bounds connections being opened at once (64).
	ConnectConcurrency int
	// Buckets are the histogram bucket bounds of the text report.
	Buckets []time.Duration
	// Progress receives a status line per second (nil: none).
	Progress io.Writer
	// Log receives debug details (nil: discarded).
	Log *slog.Logger
}

// scenario runs one load shape and fills the report.
type scenario func(ctx context.Context, e *env) error

// scenarios by name; Names lists them.
var scenarios = map[string]scenario{
	"fanout":    runFanout,
	"sse-users": runSSEUsers,
	"track":     runTrack,
	"fib":       runFib,
	"idle":      runIdle,
	"queue":     runQueue,
}

// Names lists the scenarios.
func Names() []string {
	out := make([]string, 0, len(scenarios))
	for n := range scenarios {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Run runs scenario name against o.Target. The report is returned even
// with an error when something was measured (Completed is false then).
func Run(ctx context.Context, name string, o Options) (*Report, error) {
	run, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown scenario %q (have %v)", ErrUsage, name, Names())
	}
	e, err := newEnv(name, o)
	if err != nil {
		return nil, err
	}
	if _, err := raiseNoFile(); err != nil {
		e.log.Debug("raise open files", "err", err)
	}
	sctx, stop := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		e.sample(sctx)
	}()
	runErr := run(ctx, e)
	stop()
	<-samplerDone
	e.finish(runErr)
	for _, fn := range e.posts {
		fn(e.rep)
	}
	return e.rep, runErr
}

// env is the state one run shares between its scenario and its sampler.
type env struct {
	o    Options
	log  *slog.Logger
	host string // host:port of Target, the publishers' server
	// subs are the host:port and URL of each subscriber target.
	subs, subURLs []string
	pid           int
	// api makes the setup calls (create and delete emitters, read state).
	api *apiclient.Client
	// auth is the Authorization header line of the raw clients, or "";
	// header carries it on WebSocket handshakes.
	auth   string
	header http.Header

	ops, errs, lost, dups, conns atomic.Int64
	// offline counts the offline markers subscribers received (the
	// emitter's owner node was unreachable for a while).
	offline atomic.Int64
	// limiter paces the ops when Options.OpsRate is set (nil: none).
	limiter *rate.Limiter
	// opsSrc are live counts kept elsewhere (queue consumers' acks) that
	// add to ops (see opsNow).
	opsMu  sync.Mutex
	opsSrc []func() int64

	mu         sync.Mutex
	errSamples map[string]int
	rep        *Report
	hists      []*latencies
	win        window
	inWindow   atomic.Bool // win is open and not closed; set under mu
	peakRSS    int64
	posts      []func(*Report)
}

// pace waits until n more ops may start (Options.OpsRate).
func (e *env) pace(ctx context.Context, n int) error {
	if e.limiter == nil {
		return nil
	}
	return e.limiter.WaitN(ctx, n)
}

// opsFrom adds a live count kept elsewhere to the run's ops.
func (e *env) opsFrom(f func() int64) {
	e.opsMu.Lock()
	e.opsSrc = append(e.opsSrc, f)
	e.opsMu.Unlock()
}

// setOps sets the window's ops when the scenario counts them itself
// (exactly, where the live counter straddles the window's edges).
func (e *env) setOps(n int64) {
	e.mu.Lock()
	e.rep.Ops = n
	e.mu.Unlock()
}

// opsNow is the run's ops so far.
func (e *env) opsNow() int64 {
	n := e.ops.Load()
	e.opsMu.Lock()
	for _, f := range e.opsSrc {
		n += f()
	}
	e.opsMu.Unlock()
	return n
}

// after registers fn to complete the report once its figures are final
// (checks against targets).
func (e *env) after(fn func(*Report)) {
	e.mu.Lock()
	e.posts = append(e.posts, fn)
	e.mu.Unlock()
}

// window is the measured interval of a run.
type window struct {
	open, closed     bool
	t0, t1           time.Time
	ops0, ops1       int64
	proc0, proc1     procSample
	client0, client1 cpuTimes
}

func newEnv(name string, o Options) (*env, error) {
	if o.Target == "" {
		o.Target = apiclient.DefaultServer
	}
	u, host, err := parseTarget(o.Target)
	if err != nil {
		return nil, err
	}
	subs, subURLs := []string{host}, []string{o.Target}
	if len(o.Targets) > 0 {
		subs, subURLs = nil, nil
		for _, t := range o.Targets {
			_, h, err := parseTarget(t)
			if err != nil {
				return nil, err
			}
			subs, subURLs = append(subs, h), append(subURLs, t)
		}
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	o.Warmup = max(o.Warmup, 0)
	if o.ConnectConcurrency <= 0 {
		o.ConnectConcurrency = 64
	}
	if len(o.Buckets) == 0 {
		o.Buckets = DefaultBuckets
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api, err := apiclient.New(o.Target, apiclient.WithToken(o.Token), apiclient.WithUserAgent("sidestream-bench"),
		apiclient.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	e := &env{o: o, log: log, host: host, subs: subs, subURLs: subURLs, api: api, errSamples: map[string]int{},
		rep: &Report{Scenario: name, Target: o.Target, Targets: o.Targets, Params: map[string]any{}, Started: time.Now().UTC(), Metrics: map[string]float64{}}}
	if o.OpsRate < 0 {
		return nil, fmt.Errorf("%w: --ops-rate %g must be >= 0", ErrUsage, o.OpsRate)
	}
	if o.OpsRate > 0 {
		// A burst of one post's messages (at most 100) or one second.
		e.limiter = rate.NewLimiter(rate.Limit(o.OpsRate), max(100, int(o.OpsRate)))
		e.param("ops_rate", o.OpsRate)
	}
	if o.Token != "" {
		e.auth = "Authorization: Bearer " + o.Token + "\r\n"
		e.header = http.Header{"Authorization": {"Bearer " + o.Token}}
	}
	e.pid = o.PID
	if len(o.Targets) > 0 && e.pid >= 0 {
		e.note("server stats are the first target's process only")
	}
	if e.pid == 0 && isLocal(u.Hostname()) {
		_, ps, _ := net.SplitHostPort(host)
		port, _ := strconv.Atoi(ps)
		if pid, err := pidByPort(port); err == nil {
			e.pid = pid
		} else {
			e.note("process stats off: " + err.Error())
		}
	}
	return e, nil
}

// parseTarget checks a target URL and returns it with the host:port to dial.
func parseTarget(target string) (*url.URL, string, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http") || u.Host == "" {
		return nil, "", fmt.Errorf("%w: target %q must be an http://host:port URL", ErrUsage, target)
	}
	if u.Port() == "" {
		return u, net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return u, u.Host, nil
}

// subHost is the server subscriber i connects to: the subscriber targets
// round-robin.
func (e *env) subHost(i int) string { return e.subs[i%len(e.subs)] }

// subURL is the base URL of subHost(i).
func (e *env) subURL(i int) string { return e.subURLs[i%len(e.subURLs)] }

// param records an effective parameter of the run.
func (e *env) param(k string, v any) { e.mu.Lock(); e.rep.Params[k] = v; e.mu.Unlock() }

// metric records a scenario-specific figure.
func (e *env) metric(k string, v float64) { e.mu.Lock(); e.rep.Metrics[k] = v; e.mu.Unlock() }

// note records a remark shown in the report.
func (e *env) note(s string) { e.mu.Lock(); e.rep.Notes = append(e.rep.Notes, s); e.mu.Unlock() }

// check records a target and whether the run met it.
func (r *Report) check(name, want, got string, ok bool) {
	r.Checks = append(r.Checks, Check{Name: name, Want: want, Got: got, OK: ok})
}

// checkLatency checks the p99 of histogram name against limit (ms).
func (r *Report) checkLatency(name, label string, limit float64) {
	for _, l := range r.Latencies {
		if l.Name == name {
			r.check(label, "≤ "+ms(limit), ms(l.P99), l.Count > 0 && l.P99 <= limit)
			return
		}
	}
	r.check(label, "≤ "+ms(limit), "no values", false)
}

// fail counts an error and keeps a few distinct messages for the report.
func (e *env) fail(err error) {
	e.errs.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := err.Error()
	if _, ok := e.errSamples[msg]; ok || len(e.errSamples) < 20 {
		e.errSamples[msg]++
	}
}

// hist returns a new named latency histogram reported with the run.
func (e *env) hist(name string) *latencies {
	l := newLatencies(name)
	e.mu.Lock()
	e.hists = append(e.hists, l)
	e.mu.Unlock()
	return l
}

func (e *env) procNow() procSample {
	if e.pid <= 0 {
		return procSample{At: time.Now()}
	}
	s, err := readProc(e.pid)
	if err != nil {
		return procSample{At: time.Now()}
	}
	return s
}

// openWindow starts the measured interval.
func (e *env) openWindow() {
	p := e.procNow()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.win = window{open: true, t0: time.Now(), ops0: e.opsNow(), proc0: p, client0: selfCPU()}
	e.peakRSS = p.RSS
	e.inWindow.Store(true)
}

// closeWindow ends the measured interval (once).
func (e *env) closeWindow() {
	p := e.procNow()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.win.open || e.win.closed {
		return
	}
	e.win.closed, e.win.t1, e.win.ops1, e.win.proc1, e.win.client1 = true, time.Now(), e.opsNow(), p, selfCPU()
	e.peakRSS = max(e.peakRSS, p.RSS)
	e.inWindow.Store(false)
}

// measuring reports whether the window is open now. Every request and
// delivery asks, so it reads an atomic, not e.mu: 64 workers and their
// subscribers taking one mutex three times a publish made the generator
// park and wake on it (futex calls).
func (e *env) measuring() bool { return e.inWindow.Load() }

// sample records the timeline and prints progress once a second.
func (e *env) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var prevOps int64
	prev := e.procNow()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := e.procNow()
		ops := e.opsNow()
		s := Sample{T: time.Since(start).Seconds(), Ops: ops, Rate: float64(ops - prevOps),
			Conns: e.conns.Load(), Errors: e.errs.Load(), Lost: e.lost.Load(), ServerRSS: p.RSS}
		if dt := p.At.Sub(prev.At).Seconds(); dt > 0 && e.pid > 0 {
			s.ServerCPU = 100 * (p.CPU - prev.CPU).Seconds() / dt
		}
		prevOps, prev = ops, p
		e.mu.Lock()
		e.rep.Timeline = append(e.rep.Timeline, s)
		if e.win.open && !e.win.closed {
			e.peakRSS = max(e.peakRSS, p.RSS)
		}
		e.mu.Unlock()
		if e.o.Progress != nil {
			fmt.Fprintf(e.o.Progress, "%s %5.0fs  conns %-6d %s %-12d %10.0f/s  errors %d  lost %d  server cpu %4.0f%% rss %s\n",
				e.rep.Scenario, s.T, s.Conns, e.rep.OpsUnit, s.Ops, s.Rate, s.Errors, s.Lost, s.ServerCPU, iec(s.ServerRSS))
		}
	}
}

// finish computes the report's figures from the window and histograms.
func (e *env) finish(runErr error) {
	e.closeWindow()
	e.mu.Lock()
	defer e.mu.Unlock()
	r, w := e.rep, e.win
	r.Completed = runErr == nil
	if runErr != nil {
		r.Error = runErr.Error()
	}
	r.Errors, r.Lost, r.Duplicates = e.errs.Load(), e.lost.Load(), e.dups.Load()
	if n := e.offline.Load(); n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d offline markers: the emitter's owner node was unreachable for a while", n))
	}
	for msg, n := range e.errSamples {
		r.ErrorSamples = append(r.ErrorSamples, fmt.Sprintf("%d× %s", n, msg))
	}
	sort.Strings(r.ErrorSamples)
	for _, h := range e.hists {
		r.Latencies = append(r.Latencies, summarize(h.name, h.merged(), e.o.Buckets))
	}
	if !w.open {
		return
	}
	el := w.t1.Sub(w.t0).Seconds()
	r.Elapsed = el
	if r.Ops == 0 {
		r.Ops = w.ops1 - w.ops0
	}
	if el > 0 {
		r.Rate = float64(r.Ops) / el
		r.Client = &ClientStats{CPUPercent: percent(w.client1.Total-w.client0.Total, el),
			SysPercent:     percent(w.client1.Sys-w.client0.Sys, el),
			CPUMicrosPerOp: perOp(w.client1.Total-w.client0.Total, r.Ops),
			SysMicrosPerOp: perOp(w.client1.Sys-w.client0.Sys, r.Ops)}
	}
	if e.pid > 0 && el > 0 && w.proc1.RSS > 0 {
		cpu, sys := w.proc1.CPU-w.proc0.CPU, w.proc1.Sys-w.proc0.Sys
		r.Server = &ServerStats{PID: e.pid, Threads: w.proc1.Threads,
			CPUPercent: percent(cpu, el), SysPercent: percent(sys, el),
			CPUMicrosPerOp: perOp(cpu, r.Ops), SysMicrosPerOp: perOp(sys, r.Ops),
			ChildCPUPercent: percent(w.proc1.ChildCPU-w.proc0.ChildCPU, el),
			RSSStart:        w.proc0.RSS, RSSEnd: w.proc1.RSS, RSSPeak: max(e.peakRSS, w.proc1.RSS), ChildRSS: w.proc1.ChildRSS}
	}
}

// percent is d over el seconds in percent of one core.
func percent(d time.Duration, el float64) float64 { return 100 * d.Seconds() / el }

// perOp is d per op in microseconds (0 with no ops): the CPU each
// publish, delivery or message cost, which unlike a rate does not
// depend on how much of the machine was free.
func perOp(d time.Duration, ops int64) float64 {
	if ops <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(ops)
}
