// Package app is the one place where sidestream's parts are wired: the
// bbolt store, the stream hub, the plugin host, the emitter manager and the
// HTTP server. It starts them in dependency order and shuts them down in
// reverse.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	hertzapp "github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/internal/config"
	"github.com/sidestream/sidestream/sidecar/internal/httpapi"
	"github.com/sidestream/sidestream/sidecar/internal/pluginhost"
	"github.com/sidestream/sidestream/sidecar/internal/telemetry"
)

// Options are what the binary knows about itself.
type Options struct {
	// Exe is the sidecar's own executable, re-executed to serve built-ins.
	Exe string
	// Builtins are the names of the built-in plugins.
	Builtins []string
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// Version is reported in telemetry (service.version).
	Version string
}

// StateFile is the bbolt file's name inside the data directory.
const StateFile = "sidestream.db"

// closer is one started part, closed in reverse order.
type closer struct {
	name  string
	close func(context.Context) error
}

// Run serves until ctx is done, then drains and shuts down within the
// configured timeout. A clean shutdown returns nil.
func Run(ctx context.Context, cfg config.Config, opts Options, log *slog.Logger) (err error) {
	var closers []closer
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.ShutdownTimeout))
		defer cancel()
		err = errors.Join(err, shutdown(sctx, closers, log))
	}()
	push := func(name string, fn func(context.Context) error) { closers = append(closers, closer{name, fn}) }

	tel, err := telemetry.New(ctx, telemetry.Options{
		ServiceName: cfg.Telemetry.ServiceName, ServiceVersion: opts.Version,
		OTLPEndpoint: cfg.Telemetry.OTLPEndpoint, OTLPHeaders: cfg.Telemetry.OTLPHeaders,
		SampleRatio: cfg.Telemetry.TraceSampleRatio,
	}, log.With("component", "telemetry"))
	if err != nil {
		return err
	}
	push("telemetry", tel.Close)
	ins := tel.Instruments()

	store, err := bolt.Open(ctx, filepath.Join(cfg.DataDir, StateFile), bolt.Options{
		OnCommit: func(d time.Duration, writes int) { ins.StoreCommit(context.Background(), d, writes) },
		Trace:    spanHook(tel.Tracer("sidestream/store")),
	}, log.With("component", "store"))
	if err != nil {
		return err
	}
	push("store", store.Close)

	hub := stream.NewHub(store, log.With("component", "streams"), stream.HubOptions{
		OnPublish: func(kind string, n int) { ins.Stream(kind).Published(context.Background(), n) },
	})
	push("streams", hub.Close)

	hc, err := hostConfig(cfg, opts)
	if err != nil {
		return err
	}
	hc.DialOptions = tel.GRPCDialOptions
	host, err := pluginhost.New(hc, log.With("component", "pluginhost"))
	if err != nil {
		return err
	}
	push("plugins", host.Close)
	unobserve, err := ins.ObservePlugins(pluginSamples(host))
	if err != nil {
		return err
	}
	push("plugin metrics", func(context.Context) error { return unobserve() })

	mgr := emitter.NewManager(store, host, hub, log.With("component", "emitters"))
	push("emitters", mgr.Close)
	if err := mgr.Restore(ctx); err != nil {
		// One broken emitter must not take the others down.
		log.Error("some emitters could not be restored", "err", err)
	}
	if err := ensureDefaults(ctx, mgr); err != nil {
		log.Error("shared emitters unavailable", "err", err)
	}

	srv, err := httpapi.New(httpapi.Deps{
		Emitters: mgr,
		Streams:  hub,
		Tracker:  tracker.New(hub, tracker.Options{}),
		Plugins:  pluginLister{host},
		Ready:    func(context.Context) error { return nil },
		Log:      log.With("component", "http"),
		// Telemetry first: its span and duration cover every other layer.
		Middleware:     []hertzapp.HandlerFunc{tel.HertzMiddleware()},
		Metrics:        streamMetrics{ins},
		MetricsHandler: tel.MetricsHandler(),
	}, httpapi.Options{
		Listen:            cfg.Listen,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		HeartbeatInterval: time.Duration(cfg.Heartbeat),
	})
	if err != nil {
		return err
	}
	push("http", srv.Close)
	log.Info("sidestream serving", "addr", srv.Addr(), "livedoc", "http://"+srv.Addr()+"/livedoc", "data_dir", cfg.DataDir)
	if opts.Ready != nil {
		opts.Ready(srv.Addr())
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx) }()
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
		return nil
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
}

func shutdown(ctx context.Context, closers []closer, log *slog.Logger) error {
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		c := closers[i]
		if err := c.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", c.name, err))
		}
	}
	if len(errs) == 0 {
		log.Info("shutdown complete")
	}
	return errors.Join(errs...)
}

func hostConfig(cfg config.Config, opts Options) (pluginhost.Config, error) {
	env := []string{"SIDESTREAM_LOG_ROOTS=" + strings.Join(cfg.LogRoots, string(os.PathListSeparator))}
	hc := pluginhost.Config{StartTimeout: time.Duration(cfg.PluginStartTimeout)}
	for _, name := range opts.Builtins {
		hc.Sources = append(hc.Sources, pluginhost.Source{
			Name: name, Cmd: []string{opts.Exe, "internal-plugin", name}, Env: env,
		})
	}
	if cfg.PluginDir != "" {
		external, err := pluginhost.LoadManifest(cfg.PluginDir)
		if err != nil {
			return hc, fmt.Errorf("plugin dir: %w", err)
		}
		for _, src := range external {
			src.Env = append(src.Env, env...)
			hc.Sources = append(hc.Sources, src)
		}
	}
	return hc, nil
}

// The shared instances behind /magic, /time and /fib.
var defaults = []emitter.CreateRequest{
	{ID: "magic", Kind: "magic", Config: json.RawMessage(`{"rate":1}`), Retention: &emitter.Retention{}},
	{ID: "time", Kind: "time", Config: json.RawMessage(`{"interval":"1s"}`), Retention: &emitter.Retention{}},
	{ID: "fib", Kind: "fibonacci", Config: json.RawMessage(`{}`),
		Retention: &emitter.Retention{Persist: true, MaxEvents: 10000, MaxAge: emitter.Duration(24 * time.Hour)}},
}

func ensureDefaults(ctx context.Context, mgr *emitter.Manager) error {
	var errs []error
	for _, req := range defaults {
		if _, err := mgr.Ensure(ctx, req); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", req.ID, err))
		}
	}
	return errors.Join(errs...)
}

// pluginLister adapts the host's status to what the HTTP API shows.
type pluginLister struct{ host *pluginhost.Host }

func (l pluginLister) Plugins() []httpapi.PluginInfo {
	st := l.host.Plugins()
	out := make([]httpapi.PluginInfo, len(st))
	for i, p := range st {
		out[i] = httpapi.PluginInfo{Name: p.Name, Version: p.Version, PID: p.PID, State: string(p.State),
			Restarts: p.Restarts, Instances: p.Instances, LastError: p.LastError}
	}
	return out
}

// Describe lets /api/v1/kinds show each kind's config schema and commands
// (httpapi.KindDescriber).
func (l pluginLister) Describe(ctx context.Context, kind string) (emitter.Kind, error) {
	return l.host.Describe(ctx, kind)
}
