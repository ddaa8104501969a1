package sdk

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// PluginName is the single plugin name every sidestream plugin process
// serves (one kind per process, so one name suffices).
const PluginName = "emitter"

// Handshake is the go-plugin handshake shared by host and plugins. The
// cookie is not security: it only stops a user from running a plugin
// binary by hand and seeing it hang, and stops the host from talking to a
// binary that is not a sidestream plugin.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  APIVersion,
	MagicCookieKey:   "SIDESTREAM_PLUGIN",
	MagicCookieValue: "9c4e1f7a2b8d4e63a5f0c1d27b3e8a91",
}

// stderr is the process's real stderr, captured before plugin.Serve
// redirects os.Stderr into its own stdio stream (which the host discards).
var stderr = os.Stderr

var logger = sync.OnceValue(func() *slog.Logger {
	return slog.New(traceHandler{slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})})
})

// Logger returns the plugin's logger. It writes JSON lines to stderr; the
// host re-emits each line in its own log under the plugin's name, keeping
// level, message and attributes. Log with the ctx a call gave you
// (InfoContext) and the line carries the caller's trace_id and span_id.
func Logger() *slog.Logger { return logger() }

// GRPCPlugin is the go-plugin glue for the emitter service. Plugins get it
// through Serve; the host uses it (with Impl nil) to obtain a client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the plugin served; nil on the host side (and for a plugin
	// that serves a guest source only).
	Impl Plugin
	// Guests is the guest source served, if any (Impl's own when Impl
	// implements GuestSource).
	Guests GuestSource
	// Log receives the SDK's own messages (panics, failed runs).
	Log *slog.Logger
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the emitter service.
func (g *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	gs := g.Guests
	if gs == nil && g.Impl != nil {
		gs, _ = g.Impl.(GuestSource)
	}
	pluginpb.RegisterEmitterServer(s, newServer(g.Impl, gs, g.Log))
	return nil
}

// GRPCClient returns a pluginpb.EmitterClient.
func (g *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginpb.NewEmitterClient(c), nil
}

// Serve runs p as a plugin process; call it from main. It returns when the
// host closes the connection. It also exits the process when the parent
// dies, so a plugin never outlives the sidecar even where the host could
// not arrange a parent-death signal. A p that also implements GuestSource
// serves it too. The process runs with GOMAXPROCS 1 and GOGC 400 unless
// its environment sets either (see applyRuntimeDefaults).
func Serve(p Plugin) {
	g, _ := p.(GuestSource)
	serve(p, g)
}

func serve(p Plugin, g GuestSource) {
	applyRuntimeDefaults(os.LookupEnv)
	log := Logger()
	go watchParent(os.Getppid(), 500*time.Millisecond, func() {
		log.Error("parent process died; exiting")
		os.Exit(3)
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Impl: p, Guests: g, Log: log}},
		GRPCServer:      grpcServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      hclog.Warn,
			Output:     stderr,
			JSONFormat: true,
		}),
	})
}

// watchParent calls exit once the parent pid changes (the orphan is
// re-parented to init or a subreaper). It runs for the life of the
// process, which is what it guards.
func watchParent(ppid int, every time.Duration, exit func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != ppid {
			exit()
			return
		}
	}
}
