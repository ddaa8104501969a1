// Package pluginhost runs plugins as supervised go-plugin (gRPC)
// subprocesses and implements emitter.Runner on top of them; a plugin that
// reports guests is watched through WatchGuests (guests.go).
//
// One process serves one kind and all its instances. A supervisor per
// plugin starts the process, watches it (process exit, stream errors,
// heartbeats), kills it within a bounded time, restarts it with
// exponential backoff and jitter, and opens a circuit breaker on a crash
// loop. Every instance restarts from its sink's durable checkpoint, which
// is what makes a crash cost neither a gap nor a duplicate.
package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

var _ emitter.Runner = (*Host)(nil)

// Errors of the host (besides the emitter package's sentinels).
var (
	// ErrChecksum means a plugin binary does not match its manifest.
	ErrChecksum = errors.New("plugin checksum mismatch")
	// ErrAlreadyStarted means Start was called twice for one instance.
	ErrAlreadyStarted = errors.New("instance already started")
	// ErrClosed means the host is closed.
	ErrClosed = errors.New("plugin host closed")
)

// Source says how to start one plugin.
type Source struct {
	// Name is the emitter kind the plugin serves.
	Name string
	// Cmd is the executable and its arguments.
	Cmd []string
	// Env is the plugin's whole environment ("NAME=value"), besides what
	// go-plugin adds for its handshake: the sidecar's own environment is
	// not inherited.
	Env []string
	// SHA256, when set, pins the executable (hex); it is checked before
	// every start.
	SHA256 string
}

// Config tunes the host; zero fields take the documented defaults.
type Config struct {
	Sources []Source
	// StartTimeout bounds the handshake of a starting plugin (10s).
	StartTimeout time.Duration
	// HeartbeatInterval is the heartbeat period (1s); HeartbeatTimeout
	// bounds one heartbeat (the interval); HeartbeatMisses in a row mark
	// the plugin hung (3).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	HeartbeatMisses   int
	// BackoffBase and BackoffMax bound the restart delay (100ms, 30s).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// More than CrashLimit crashes within CrashWindow open the circuit
	// (5, 1m); after CoolDown one more start is tried (1m).
	CrashLimit  int
	CrashWindow time.Duration
	CoolDown    time.Duration
	// KillTimeout bounds a graceful kill before SIGKILL (3s).
	KillTimeout time.Duration
	// ReadyWait is how long Validate, Describe and Command wait for a
	// starting or restarting plugin before ErrUnavailable (5s).
	ReadyWait time.Duration
	// DialOptions, if set, adds gRPC options to each plugin's connection
	// (telemetry: spans, RPC latency, trace context into the plugin).
	DialOptions func(plugin string) []grpc.DialOption
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.StartTimeout, 10*time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.HeartbeatTimeout, c.HeartbeatInterval)
	def(&c.BackoffBase, 100*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.CrashWindow, time.Minute)
	def(&c.CoolDown, time.Minute)
	def(&c.KillTimeout, 3*time.Second)
	def(&c.ReadyWait, 5*time.Second)
	if c.HeartbeatMisses <= 0 {
		c.HeartbeatMisses = 3
	}
	if c.CrashLimit <= 0 {
		c.CrashLimit = 5
	}
}

// State is a plugin's supervision state.
type State string

// Plugin states.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateFailed     State = "failed"
	StateStopped    State = "stopped"
)

// PluginStatus is a snapshot of one plugin for operators and tests.
type PluginStatus struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	PID       int    `json:"pid,omitempty"`
	State     State  `json:"state"`
	Restarts  int    `json:"restarts"`
	Instances int    `json:"instances"`
	LastError string `json:"last_error,omitempty"`
}

// Host supervises plugin processes and the instances they run.
type Host struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // canceled by Close: ends every goroutine
	cancel context.CancelFunc
	kinds  map[string]*kindProc
	// sockDir holds the plugins' gRPC unix sockets. A plugin killed with
	// SIGKILL cannot remove its socket; Close removes the whole directory,
	// so nothing piles up in the system temp dir.
	sockDir string

	mu     sync.Mutex // orders Start's wg.Add before Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// New starts a supervisor for every source. It does not wait for the
// plugins: a plugin that fails to start is reported by Plugins, and the
// others work regardless.
func New(cfg Config, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.defaults()
	h := &Host{cfg: cfg, log: log, kinds: make(map[string]*kindProc)}
	for _, src := range cfg.Sources {
		if src.Name == "" || len(src.Cmd) == 0 {
			return nil, fmt.Errorf("plugin source %q: name and command are required", src.Name)
		}
		if _, dup := h.kinds[src.Name]; dup {
			return nil, fmt.Errorf("plugin %q: declared twice", src.Name)
		}
		h.kinds[src.Name] = newKindProc(h, src)
	}
	dir, err := os.MkdirTemp("", "sidestream-plugins-")
	if err != nil {
		return nil, fmt.Errorf("plugin socket directory: %w", err)
	}
	h.sockDir = dir
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, k := range h.kinds {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			k.supervise(h.ctx)
		}()
	}
	return h, nil
}

// Close stops every instance and kills every plugin process. Each kill is
// bounded by KillTimeout (then SIGKILL); ctx bounds the whole wait.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		if err := os.RemoveAll(h.sockDir); err != nil {
			return fmt.Errorf("close plugin host: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close plugin host: %w", ctx.Err())
	}
}

// Plugins reports every plugin, sorted by name.
func (h *Host) Plugins() []PluginStatus {
	out := make([]PluginStatus, 0, len(h.kinds))
	for _, k := range h.kinds {
		out = append(out, k.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (h *Host) kind(name string) (*kindProc, error) {
	k, ok := h.kinds[name]
	if !ok {
		return nil, fmt.Errorf("kind %q: %w", name, emitter.ErrUnknownKind)
	}
	return k, nil
}

// Describe reports the kind as its plugin describes itself.
func (h *Host) Describe(ctx context.Context, kind string) (emitter.Kind, error) {
	k, err := h.kind(kind)
	if err != nil {
		return emitter.Kind{}, err
	}
	d, err := k.describe(ctx)
	if err == nil && !k.servesEmitter() {
		return emitter.Kind{}, k.guestOnly()
	}
	return d, err
}

// describe is the plugin's description whatever it serves.
func (k *kindProc) describe(ctx context.Context) (emitter.Kind, error) {
	if d, ok := k.description(); ok {
		return d, nil
	}
	if _, err := k.ready(ctx); err != nil {
		return emitter.Kind{}, err
	}
	d, _ := k.description()
	return d, nil
}

// Validate asks the plugin to check and normalize config.
func (h *Host) Validate(ctx context.Context, kind string, config json.RawMessage) (json.RawMessage, error) {
	k, err := h.kind(kind)
	if err != nil {
		return nil, err
	}
	norm, err := k.validate(ctx, config)
	if err != nil && !k.servesEmitter() {
		return nil, k.guestOnly()
	}
	return norm, err
}

// Start supervises a new instance. It returns at once; the instance runs
// whenever its plugin runs (also after the plugin recovered from failed).
func (h *Host) Start(_ context.Context, kind, id string, config json.RawMessage, sink emitter.Sink) error {
	k, err := h.kind(kind)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	return k.startInstance(h.ctx, &h.wg, id, config, sink)
}

// Stop ends an instance and waits, bounded by ctx, for its run to end.
// Stopping an unknown instance is not an error.
func (h *Host) Stop(ctx context.Context, kind, id string) error {
	k, err := h.kind(kind)
	if err != nil {
		return err
	}
	return k.stopInstance(ctx, id)
}

// Command runs a command in the plugin.
func (h *Host) Command(ctx context.Context, kind, id, name string, config json.RawMessage, checkpoint []byte, args json.RawMessage) (emitter.CommandResult, error) {
	k, err := h.kind(kind)
	if err != nil {
		return emitter.CommandResult{}, err
	}
	p, err := k.ready(ctx)
	if err != nil {
		return emitter.CommandResult{}, fmt.Errorf("command %s: %w", name, err)
	}
	return command(ctx, p, id, name, config, checkpoint, args)
}

// CommandBatch runs cmds in the plugin in one round trip (see
// emitter.Runner).
func (h *Host) CommandBatch(ctx context.Context, kind, id string, config json.RawMessage, checkpoint []byte, cmds []emitter.Cmd) ([]emitter.CmdOutcome, error) {
	k, err := h.kind(kind)
	if err != nil {
		return nil, err
	}
	return k.commandBatch(ctx, id, config, checkpoint, cmds)
}
