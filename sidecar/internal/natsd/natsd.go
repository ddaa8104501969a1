// Package natsd runs the NATS server embedded in a cluster-mode sidecar:
// JetStream on, its store under the data directory, routes to the other
// nodes (the sidecar connects in-process; the client listener stays on a random loopback
// port unless configured, because NATS starts routes only after it). A
// single node never starts it.
package natsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the embedded server.
type Options struct {
	// Node is the server's unique name (the sidecar's node name).
	Node string
	// Cluster is the cluster's name; routes only join servers of one name.
	Cluster string
	// Listen is the route address (host:port); empty picks a loopback port.
	Listen string
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string
	// ClientListen, if set, serves NATS clients there (default: a random
	// loopback port; the sidecar itself connects in-process).
	ClientListen string
	// StoreDir holds JetStream's files.
	StoreDir string
	// ReadyTimeout bounds the start (default 30s).
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server.
type Server struct {
	ns  *server.Server
	log *slog.Logger
}

// Start starts the server and waits until it accepts connections.
func Start(ctx context.Context, o Options, log *slog.Logger) (*Server, error) {
	so, err := serverOptions(o)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	ns.SetLoggerV2(slogLogger{log}, false, false, false)
	ns.Start()
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	if !ns.ReadyForConnections(timeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats server %s: not ready within %s", o.Node, timeout)
	}
	log.Info("nats server started", "node", o.Node, "cluster", o.Cluster, "routes", o.Routes,
		"route_listen", ns.ClusterAddr(), "store_dir", o.StoreDir)
	return &Server{ns: ns, log: log}, nil
}

func serverOptions(o Options) (*server.Options, error) {
	if o.Node == "" || o.Cluster == "" || o.StoreDir == "" {
		return nil, errors.New("nats server: node, cluster and store dir are required")
	}
	host, port, err := splitHostPort(o.Listen, "127.0.0.1", -1)
	if err != nil {
		return nil, fmt.Errorf("nats server: cluster listen %q: %w", o.Listen, err)
	}
	// NATS starts routing only once its client listener is up, so there
	// is always one: a random loopback port unless ClientListen names one.
	so := &server.Options{
		ServerName: o.Node,
		Host:       "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: o.StoreDir,
		NoSigs:  true,
		Cluster: server.ClusterOpts{Name: o.Cluster, Host: host, Port: port},
	}
	if o.ClientListen != "" {
		if so.Host, so.Port, err = splitHostPort(o.ClientListen, "127.0.0.1", 4222); err != nil {
			return nil, fmt.Errorf("nats server: client listen %q: %w", o.ClientListen, err)
		}
	}
	if len(o.Routes) == 0 {
		// JetStream refuses to run clustered without configured routes.
		return nil, errors.New("nats server: cluster mode needs routes to the other nodes (cluster.routes); one node alone runs without cluster.name")
	}
	for _, r := range o.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("nats server: route %q is not nats-route://host:port", r)
		}
		so.Routes = append(so.Routes, u)
	}
	return so, nil
}

func splitHostPort(addr, defHost string, defPort int) (string, int, error) {
	if addr == "" {
		return defHost, defPort, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, n, nil
}

// Connect opens an in-process client connection to the server.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append(opts, nats.InProcessServer(s.ns))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// RouteAddr is the address routes connect to.
func (s *Server) RouteAddr() string {
	if a := s.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Close shuts the server down, waiting for it within ctx.
func (s *Server) Close(ctx context.Context) error {
	s.ns.Shutdown()
	done := make(chan struct{})
	go func() { s.ns.WaitForShutdown(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("nats server shutdown: %w", ctx.Err())
	}
}
