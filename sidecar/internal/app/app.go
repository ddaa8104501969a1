// Package app is the one place where sidestream's parts are wired:
// telemetry, the bbolt store, the stream hub, the plugin host, the emitter
// manager, auth, the queues and the HTTP server. It starts them in dependency order and shuts them down in
// reverse.
package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	hertzapp "github.com/cloudwego/hertz/pkg/app"
	hzroute "github.com/cloudwego/hertz/pkg/route"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/guest"
	"github.com/sidestream/sidestream/core/natsbus"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/certs"
	"github.com/sidestream/sidestream/sidecar/internal/config"
	"github.com/sidestream/sidestream/sidecar/internal/crosssite"
	"github.com/sidestream/sidestream/sidecar/internal/httpapi"
	"github.com/sidestream/sidestream/sidecar/internal/pluginhost"
	"github.com/sidestream/sidestream/sidecar/internal/queueapi"
	"github.com/sidestream/sidestream/sidecar/internal/ratelimit"
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
	// SpanProcessor, if set, receives every ended span (tests pass a
	// telemetrytest.Recorder's).
	SpanProcessor telemetry.SpanProcessor
	// Reload, if set, asks for the configuration to be read again with
	// LoadConfig (the binary sends SIGHUP here); the guest sources and
	// rules of the new one apply without a restart.
	Reload     <-chan os.Signal
	LoadConfig func() (config.Config, error)
}

// StateFile is the bbolt file's name inside the data directory.
const StateFile = "sidestream.db"

// closer is one started part, closed in reverse order.
type closer struct {
	name  string
	close func(context.Context) error
}

// system is what Run started so far; each stage adds its parts and their
// closers, so a failing stage leaves the earlier ones to be shut down.
type system struct {
	cfg     config.Config
	opts    Options
	log     *slog.Logger
	closers []closer
	// ln is the HTTP listener until the server takes it.
	ln net.Listener

	tel   *telemetry.Telemetry
	store *bolt.Store
	hub   *stream.Hub
	host  *pluginhost.Host
	mgr   *emitter.Manager
	auth  *auth.Authenticator
	queue *queue.Service
	// tracker serves realtimer's user streams: from the hub on a single
	// node, from JetStream in a cluster.
	tracker *tracker.Tracker
	// cluster is nil on a single node.
	cluster *clusterParts
	guests  *guest.Service
}

func (s *system) push(name string, fn func(context.Context) error) {
	s.closers = append(s.closers, closer{name, fn})
}

// Run serves until ctx is done, then drains and shuts down within the
// configured timeout. A clean shutdown returns nil.
func Run(ctx context.Context, cfg config.Config, opts Options, log *slog.Logger) (err error) {
	// Refused before anything starts: a choice of earlier systems' routes
	// that would answer one request two ways.
	if err := httpapi.CheckCompat(cfg.Compat); err != nil {
		return err
	}
	// Relative to the working directory, which a log reader does not know.
	if abs, aerr := filepath.Abs(cfg.DataDir); aerr == nil {
		cfg.DataDir = abs
	}
	// Bound first: an address in use or unusable fails before the store
	// opens and the plugins start.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen (--listen, SIDESTREAM_LISTEN): cannot bind %s: %w", cfg.Listen, err)
	}
	s := &system{cfg: cfg, opts: opts, log: log, ln: ln}
	defer func() {
		if s.ln != nil { // a stage failed before the server took it
			_ = s.ln.Close()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.ShutdownTimeout))
		defer cancel()
		err = errors.Join(err, shutdown(sctx, s.closers, log))
	}()
	for _, stage := range []func(context.Context) error{s.startDebug, s.startStorage, s.startPlugins, s.startEmitters, s.startCluster, s.startDefaults, s.startGuests, s.startQueues} {
		if err := stage(ctx); err != nil {
			return err
		}
	}
	srv, queues, err := s.newServer()
	if err != nil {
		return err
	}
	s.ln = nil // the server's now
	s.push("http", srv.Close)
	// Closed before the server: queue WebSockets get their 1001 first.
	s.push("queue websockets", queues.Close)
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	log.Info("sidestream serving", "addr", srv.Addr(), "livedoc", scheme+srv.Addr()+"/livedoc", "data_dir", cfg.DataDir)
	if opts.Ready != nil {
		opts.Ready(srv.Addr())
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx) }()
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloadDone := make(chan struct{})
	go func() { defer close(reloadDone); s.watchReload(reloadCtx) }()
	defer func() { stopReload(); <-reloadDone }()
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
		return nil
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
}

// startStorage opens telemetry (first, so it closes last), the store and
// the stream hub.
func (s *system) startStorage(ctx context.Context) error {
	tel, err := telemetry.New(ctx, telemetry.Options{
		ServiceName: s.cfg.Telemetry.ServiceName, ServiceVersion: s.opts.Version,
		OTLPEndpoint: s.cfg.Telemetry.OTLPEndpoint, OTLPHeaders: s.cfg.Telemetry.OTLPHeaders,
		SampleRatio: s.cfg.Telemetry.TraceSampleRatio, SpanProcessor: s.opts.SpanProcessor,
	}, s.log.With("component", "telemetry"))
	if err != nil {
		return err
	}
	s.tel = tel
	s.push("telemetry", tel.Close)
	ins := tel.Instruments()

	s.store, err = bolt.Open(ctx, filepath.Join(s.cfg.DataDir, StateFile), bolt.Options{
		OnCommit: func(d time.Duration, writes int) { ins.StoreCommit(context.Background(), d, writes) },
		Trace:    spanHook(tel, "sidestream/store"),
	}, s.log.With("component", "store"))
	if err != nil {
		return err
	}
	s.push("store", s.store.Close)

	s.hub = stream.NewHub(s.store, s.log.With("component", "streams"), stream.HubOptions{
		OnPublish:  func(kind string, n int) { ins.Stream(kind).Published(context.Background(), n) },
		WakeLinger: time.Duration(s.cfg.WakeLinger),
	})
	s.push("streams", s.hub.Close)
	s.tracker = tracker.New(s.hub, tracker.Options{})
	return nil
}

// startPlugins starts the plugin host over the built-ins and the plugin
// directory.
func (s *system) startPlugins(context.Context) error {
	hc, err := hostConfig(s.cfg, s.opts)
	if err != nil {
		return err
	}
	hc.DialOptions = s.tel.GRPCDialOptions
	s.host, err = pluginhost.New(hc, s.log.With("component", "pluginhost"))
	if err != nil {
		return err
	}
	s.push("plugins", s.host.Close)
	unobserve, err := s.tel.Instruments().ObservePlugins(pluginSamples(s.host))
	if err != nil {
		return err
	}
	s.push("plugin metrics", func(context.Context) error { return unobserve() })
	return nil
}

// startEmitters restores the stored emitters and the shared ones.
func (s *system) startEmitters(ctx context.Context) error {
	s.mgr = emitter.NewManager(s.store, s.host, s.hub, s.log.With("component", "emitters"),
		emitter.WithCommandObserver(commandMetrics{s.tel.Instruments()}))
	s.push("emitters", s.mgr.Close)
	if err := s.mgr.Restore(ctx); err != nil {
		// One broken emitter must not take the others down.
		s.log.Error("some emitters could not be restored", "err", err)
	}
	return nil
}

// startDefaults ensures the shared emitters: on this node, or once in the
// cluster (the first node to claim one runs it).
func (s *system) startDefaults(ctx context.Context) error {
	var ens ensurer = s.mgr
	if s.cluster != nil {
		ens = s.cluster.emitters
	}
	s.repaceMagic(ctx)
	if err := ensureDefaults(ctx, ens, s.cfg.MagicRate); err != nil {
		s.log.Error("shared emitters unavailable", "err", err)
	}
	return nil
}

// emitters is what the API serves: this node's, or the cluster's.
func (s *system) emitters() httpapi.Emitters {
	if s.cluster != nil {
		return s.cluster.emitters
	}
	return localEmitters{s.mgr}
}

// localEmitters gives the manager the API's context-taking Stream.
type localEmitters struct{ *emitter.Manager }

func (l localEmitters) Stream(_ context.Context, id string) (*stream.Stream, error) {
	return l.Manager.Stream(id)
}

// startQueues opens the authenticator and the queue service.
func (s *system) startQueues(ctx context.Context) error {
	a := s.cfg.Auth
	var err error
	s.auth, err = auth.New(auth.Config{
		TokenFile: a.TokenFile, JWTSecret: a.JWTSecret, JWTSecretFile: a.JWTSecretFile,
		JWTPublicKeyFile: a.JWTPublicKeyFile, JWKSFile: a.JWKSFile,
		Issuer: a.Issuer, Audience: a.Audience, TenantClaim: a.TenantClaim,
	}, s.log.With("component", "auth"))
	if err != nil {
		return err
	}
	driver, err := s.queueDriver(ctx)
	if err != nil {
		return err
	}
	// config.Default holds Zaqar's minimums, so these are the values in
	// force and the ones config print shows.
	limits := queue.DefaultLimits()
	limits.MinMessageTTL = time.Duration(s.cfg.Queues.MinMessageTTL)
	limits.MinClaimTTL = time.Duration(s.cfg.Queues.MinClaimTTL)
	s.queue = queue.NewService(driver, queue.Options{Limits: limits}, s.log.With("component", "queues"))
	s.push("queues", s.queue.Close)
	return nil
}

// queueDriver is where queues live: the local file, or JetStream shared
// by the cluster (config fills the driver in: jetstream in cluster mode).
func (s *system) queueDriver(ctx context.Context) (queue.Driver, error) {
	if s.cfg.Queues.Driver != "jetstream" {
		return s.store.Queues(ctx)
	}
	if s.cluster == nil {
		return nil, errors.New("queues.driver jetstream needs cluster mode")
	}
	c := s.cluster
	ctx, cancel := context.WithTimeout(ctx, clusterJoinTimeout)
	defer cancel()
	d, err := natsbus.NewQueueDriver(ctx, c.js, natsbus.QueueOptions{Replicas: c.replicas, Node: c.node,
		Log: s.log.With("component", "queues")})
	if err != nil {
		return nil, err
	}
	s.push("queue driver", d.Close)
	return d, nil
}

// newServer builds the HTTP server with every API mounted.
func (s *system) newServer() (*httpapi.Server, *queueapi.API, error) {
	tlsConf, err := s.startTLS()
	if err != nil {
		return nil, nil, err
	}
	ins := s.tel.Instruments()
	var queues *queueapi.API
	// One allowance per client, whether it writes over REST or /v2/ws.
	writes := ratelimit.New(s.cfg.Limits.WriteRate, s.cfg.Limits.WriteBurst)
	deps := httpapi.Deps{
		Emitters: s.emitters(),
		Streams:  s.hub,
		Tracker:  s.tracker,
		Plugins:  pluginLister{s.host},
		Shared:   sharedIDs(),
		Ready:    s.ready,
		Log:      s.log.With("component", "http"),
		// Telemetry first: its span and duration cover every other layer.
		Middleware:     []hertzapp.HandlerFunc{s.tel.HertzMiddleware()},
		Metrics:        streamMetrics{ins},
		MetricsHandler: s.tel.MetricsHandler(),
		OnConnRefused:  connsRefused(ins),
		Writes:         writes,
		Mount: []func(hzroute.IRoutes){func(r hzroute.IRoutes) {
			queues = queueapi.Register(r, s.queue, s.auth, queueapi.Options{Heartbeat: time.Duration(s.cfg.Heartbeat), Writes: writes},
				s.log.With("component", "queueapi"))
		}},
	}
	if s.cluster != nil {
		deps.Cluster = s.cluster.view
	}
	deps.Auth = s.auth
	deps.Guests = s.guestList
	srv, err := httpapi.New(deps, httpapi.Options{
		Listener:          s.ln,
		MaxBodyBytes:      s.cfg.MaxBodyBytes,
		HeartbeatInterval: time.Duration(s.cfg.Heartbeat),
		MaxConns:          s.cfg.Limits.MaxConnections,
		MaxConnsPerIP:     s.cfg.Limits.MaxConnectionsPerIP,
		CrossSite:         crossSitePolicy(s.cfg),
		TLS:               tlsConf,
		Compat:            s.cfg.Compat,
	})
	if err != nil {
		return nil, nil, err
	}
	return srv, queues, nil
}

// startTLS loads the certificate pair, if configured, and reloads it on
// SIGHUP until shutdown. Beyond loopback without TLS it warns: bearer
// tokens would cross the network in clear unless a proxy terminates TLS.
func (s *system) startTLS() (*tls.Config, error) {
	if s.cfg.TLSCert == "" {
		if host, _, err := net.SplitHostPort(s.cfg.Listen); err == nil && !config.IsLoopback(host) {
			s.log.Warn("serving plain HTTP beyond loopback: tokens and data cross the network in clear unless a proxy terminates TLS (--tls-cert, --tls-key)", "listen", s.cfg.Listen)
		}
		return nil, nil
	}
	r, err := certs.New(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: %w", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := r.Reload(); err != nil {
					s.log.Error("tls certificate not reloaded; the previous one stays", "err", err)
				} else {
					s.log.Info("tls certificate reloaded", "cert", s.cfg.TLSCert)
				}
			}
		}
	}()
	s.push("tls reloader", func(context.Context) error {
		signal.Stop(hup)
		close(done)
		<-stopped
		return nil
	})
	return r.Config(), nil
}

// crossSitePolicy is the operator's CORS allowlist and, on a loopback
// bind without auth (where any local page could otherwise drive the API
// by DNS rebinding), the host names requests must carry.
func crossSitePolicy(cfg config.Config) crosssite.Policy {
	var p crosssite.Policy
	for _, o := range cfg.CORSOrigins {
		if v, err := crosssite.ParseOrigin(o); err == nil { // Validate refused the others
			p.Origins = append(p.Origins, v)
		}
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err == nil && config.IsLoopback(host) && !cfg.Auth.Enabled() {
		var adv string
		if u, err := url.Parse(cfg.Cluster.Advertise); err == nil {
			adv = u.Hostname()
		}
		p.Hosts = crosssite.LoopbackHosts(host, adv)
	}
	return p
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

// The shared instances behind /magic, /time and /fib (magic's rate is
// the magic_rate key's, set by ensureDefaults).
var defaults = []emitter.CreateRequest{
	{ID: "magic", Kind: "magic", Retention: &emitter.Retention{}},
	{ID: "time", Kind: "time", Config: json.RawMessage(`{"interval":"1s"}`), Retention: &emitter.Retention{}},
	{ID: "fib", Kind: "fibonacci", Config: json.RawMessage(`{}`),
		Retention: &emitter.Retention{Persist: true, MaxEvents: 10000, MaxAge: emitter.Duration(24 * time.Hour)}},
}

// sharedIDs are the ids of defaults, which the API refuses to delete.
func sharedIDs() []string {
	ids := make([]string, len(defaults))
	for i, d := range defaults {
		ids[i] = d.ID
	}
	return ids
}

func magicConfig(rate float64) json.RawMessage {
	return json.RawMessage(`{"rate":` + strconv.FormatFloat(rate, 'g', -1, 64) + `}`)
}

// repaceMagic drops this node's shared magic emitter when it runs at
// another rate than magic_rate, so ensureDefaults makes it anew: it keeps
// no history, and a changed key must take effect on the next start.
func (s *system) repaceMagic(ctx context.Context) {
	spec, err := s.mgr.Get(ctx, "magic")
	if err != nil {
		return // not on this node: nothing to change here
	}
	var c struct{ Rate float64 }
	if json.Unmarshal(spec.Config, &c) == nil && c.Rate == s.cfg.MagicRate {
		return
	}
	if err := s.mgr.Delete(ctx, "magic"); err != nil {
		s.log.Warn("the shared magic emitter keeps its old rate", "rate", c.Rate, "magic_rate", s.cfg.MagicRate, "err", err)
	}
}

type ensurer interface {
	Ensure(ctx context.Context, req emitter.CreateRequest) (emitter.Spec, error)
}

func ensureDefaults(ctx context.Context, mgr ensurer, magicRate float64) error {
	var errs []error
	for _, req := range defaults {
		if req.ID == "magic" {
			req.Config = magicConfig(magicRate)
		}
		if _, err := mgr.Ensure(ctx, req); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", req.ID, err))
		}
	}
	return errors.Join(errs...)
}

// pluginLister adapts the host's status to what the HTTP API shows.
type pluginLister struct{ host *pluginhost.Host }

func (l pluginLister) Plugins() []api.Plugin {
	st := l.host.Plugins()
	out := make([]api.Plugin, len(st))
	for i, p := range st {
		out[i] = api.Plugin{Name: p.Name, Version: p.Version, PID: p.PID, State: string(p.State),
			Restarts: p.Restarts, Instances: p.Instances, LastError: p.LastError}
	}
	return out
}

// Describe lets /api/v1/kinds show each kind's config schema and commands
// (httpapi.KindDescriber).
func (l pluginLister) Describe(ctx context.Context, kind string) (emitter.Kind, error) {
	return l.host.Describe(ctx, kind)
}
