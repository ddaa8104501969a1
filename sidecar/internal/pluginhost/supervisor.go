package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// kindProc supervises the process of one plugin and its instances.
type kindProc struct {
	h   *Host
	src Source

	mu        sync.Mutex
	state     State
	cur       *proc // running process, nil otherwise
	changed   chan struct{}
	desc      *emitter.Kind
	described string   // the name the plugin itself reports (Probe)
	roles     []string // what the running plugin offers (nil before it ran)
	restarts  int
	lastErr   error
	crashes   []time.Time
	instances map[string]*instance
}

func newKindProc(h *Host, src Source) *kindProc {
	return &kindProc{h: h, src: src, state: StateStarting, changed: make(chan struct{}), instances: make(map[string]*instance)}
}

// setState records a transition and wakes everyone waiting for one.
// Callers hold k.mu.
func (k *kindProc) setStateLocked(s State, cur *proc) {
	k.state, k.cur = s, cur
	close(k.changed)
	k.changed = make(chan struct{})
}

func (k *kindProc) setState(s State, cur *proc) {
	k.mu.Lock()
	k.setStateLocked(s, cur)
	k.mu.Unlock()
}

// supervise runs for the life of the host. It locks its OS thread for
// good: children are forked from it with Pdeathsig, which the kernel
// delivers when this thread ends, so it must not be handed to other
// goroutines nor end before the children are gone.
func (k *kindProc) supervise(ctx context.Context) {
	runtime.LockOSThread()
	log := k.h.log.With("plugin", k.src.Name)
	halfOpen := false
	for ctx.Err() == nil {
		if !halfOpen && k.circuitOpen() {
			log.Error("plugin crash loop: circuit open", "cool_down", k.h.cfg.CoolDown, "error", k.lastError())
			k.setState(StateFailed, nil)
			if !sleep(ctx, k.h.cfg.CoolDown) {
				break
			}
			halfOpen = true
		}
		p, err := k.spawn(ctx)
		if err == nil {
			if halfOpen {
				k.resetCrashes()
			}
			halfOpen = false
			k.running(p)
			err = k.monitor(ctx, p)
			k.setState(StateRestarting, nil)
			k.kill(p, errors.Is(err, errHung))
		}
		if ctx.Err() != nil {
			break
		}
		log.Warn("plugin died", "error", err)
		k.crashed(err)
		if halfOpen {
			halfOpen = false
			k.setState(StateFailed, nil)
			if !sleep(ctx, k.h.cfg.CoolDown) {
				break
			}
			halfOpen = true
			continue
		}
		k.setState(StateRestarting, nil)
		if !sleep(ctx, backoff(k.h.cfg.BackoffBase, k.h.cfg.BackoffMax, k.recentCrashes())) {
			break
		}
	}
	k.setState(StateStopped, nil)
}

// running publishes p as the live process.
func (k *kindProc) running(p *proc) {
	d := kindOf(p.desc)
	described := d.Name
	if d.Name != k.src.Name {
		k.h.log.Warn("plugin describes another kind; serving it under its configured name",
			"plugin", k.src.Name, "described", d.Name)
		d.Name = k.src.Name
	}
	k.mu.Lock()
	k.desc, k.described = &d, described
	k.roles = append([]string{}, p.desc.GetRoles()...)
	k.setStateLocked(StateRunning, p)
	k.mu.Unlock()
	k.h.log.Info("plugin running", "plugin", k.src.Name, "pid", p.pid, "version", d.Version)
}

var errHung = errors.New("plugin hung")

// monitor returns why p died, or nil once ctx is done.
func (k *kindProc) monitor(ctx context.Context, p *proc) error {
	cfg := k.h.cfg
	t := time.NewTicker(cfg.HeartbeatInterval)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.gone.Done():
			if p.exited.Err() != nil {
				return fmt.Errorf("plugin process %d exited", p.pid)
			}
			return context.Cause(p.gone)
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, cfg.HeartbeatTimeout)
		_, err := p.rpc.Heartbeat(hctx, &pluginpb.HeartbeatRequest{})
		cancel()
		if err == nil {
			misses = 0
			continue
		}
		if misses++; misses >= cfg.HeartbeatMisses {
			return fmt.Errorf("%w: %d heartbeats in a row failed, last: %w", errHung, misses, err)
		}
	}
}

func (k *kindProc) crashed(err error) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr = err
	k.restarts++
	k.crashes = append(pruneBefore(k.crashes, now.Add(-k.h.cfg.CrashWindow)), now)
}

func (k *kindProc) circuitOpen() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.crashes = pruneBefore(k.crashes, time.Now().Add(-k.h.cfg.CrashWindow))
	return len(k.crashes) > k.h.cfg.CrashLimit
}

func (k *kindProc) recentCrashes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.crashes)
}

func (k *kindProc) resetCrashes() {
	k.mu.Lock()
	k.crashes = nil
	k.mu.Unlock()
}

func (k *kindProc) lastError() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

func pruneBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return ts[i:]
}

// backoff is base·2^(n-1) capped at max, with jitter in [d/2, d] so that
// plugins that died together do not restart in lockstep.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitRunning returns the live process, waiting while the plugin starts,
// restarts or is failed; it fails only when ctx ends.
func (k *kindProc) waitRunning(ctx context.Context) (*proc, error) {
	for {
		k.mu.Lock()
		p, ch := k.cur, k.changed
		k.mu.Unlock()
		if p != nil && !p.isGone() {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

// ready is waitRunning for callers that answer a user: it gives up with
// ErrUnavailable at once when the plugin is failed, and after ReadyWait
// when it is (re)starting.
func (k *kindProc) ready(ctx context.Context) (*proc, error) {
	ctx, cancel := context.WithTimeout(ctx, k.h.cfg.ReadyWait)
	defer cancel()
	for {
		k.mu.Lock()
		p, st, ch, last := k.cur, k.state, k.changed, k.lastErr
		k.mu.Unlock()
		switch {
		case p != nil && st == StateRunning:
			return p, nil
		case st == StateFailed || st == StateStopped:
			return nil, k.unavailable(st, last)
		}
		select {
		case <-ctx.Done():
			return nil, k.unavailable(st, last)
		case <-ch:
		}
	}
}

func (k *kindProc) unavailable(st State, last error) error {
	if last != nil {
		return fmt.Errorf("plugin %s is %s (last error: %v): %w", k.src.Name, st, last, emitter.ErrUnavailable)
	}
	return fmt.Errorf("plugin %s is %s: %w", k.src.Name, st, emitter.ErrUnavailable)
}

func (k *kindProc) description() (emitter.Kind, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.desc == nil {
		return emitter.Kind{}, false
	}
	return *k.desc, true
}

func (k *kindProc) status() PluginStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := PluginStatus{Name: k.src.Name, State: k.state, Restarts: k.restarts, Instances: len(k.instances)}
	if k.desc != nil {
		s.Version = k.desc.Version
	}
	if k.cur != nil {
		s.PID = k.cur.pid
	}
	if k.lastErr != nil {
		s.LastError = k.lastErr.Error()
	}
	return s
}

func kindOf(d *pluginpb.DescribeResponse) emitter.Kind {
	k := emitter.Kind{
		Name:         d.GetName(),
		Version:      d.GetVersion(),
		Description:  d.GetDescription(),
		ConfigSchema: d.GetConfigSchema(),
		EventTypes:   d.GetEventTypes(),
	}
	for _, c := range d.GetCommands() {
		k.Commands = append(k.Commands, emitter.CommandSpec{Name: c.GetName(), Description: c.GetDescription()})
	}
	return k
}
