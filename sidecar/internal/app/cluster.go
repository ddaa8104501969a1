package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/natsbus"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/config"
	"github.com/sidestream/sidestream/sidecar/internal/natsd"
)

// clusterParts are what cluster mode adds.
type clusterParts struct {
	mode     string
	name     string
	node     string
	replicas int
	natsd    *natsd.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	nodes    *natsbus.Nodes
	reg      *natsbus.Registry
	emitters *cluster.Emitters
}

// clusterJoinTimeout bounds joining the cluster at start (JetStream needs
// a meta leader, which needs a quorum of the configured nodes).
const clusterJoinTimeout = 2 * time.Minute

// startCluster joins the cluster (embedded NATS or an external one), opens
// the registry and serves this node's emitters to the others. A single
// node skips it.
func (s *system) startCluster(ctx context.Context) error {
	cc := s.cfg.Cluster
	if !cc.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, clusterJoinTimeout)
	defer cancel()
	p := &clusterParts{name: cc.Name, node: nodeName(cc), replicas: replicas(cc)}
	if err := s.connectNATS(ctx, p); err != nil {
		return err
	}
	log := s.log.With("component", "cluster")
	self := cluster.Node{Name: p.node, Advertise: advertise(s.cfg), Version: s.opts.Version, Started: time.Now().UTC()}
	var err error
	if p.nodes, err = natsbus.StartNodes(ctx, p.nc, p.js, self, natsbus.NodesOptions{Replicas: p.replicas}, log); err != nil {
		return err
	}
	s.push("cluster membership", p.nodes.Close)
	if p.reg, err = natsbus.OpenRegistry(ctx, p.js, p.replicas, log); err != nil {
		return err
	}
	s.push("emitter registry", p.reg.Close)
	peers := natsbus.NewPeers(p.nc, p.nodes)
	mirrors := natsbus.NewMirrors(p.nc, s.hub, peers, p.nodes, natsbus.MirrorsOptions{}, log)
	s.push("stream mirrors", mirrors.Close)
	exp := natsbus.NewExporter(p.nc, time.Duration(cc.ExportLinger), log)
	s.push("stream export", exp.Close)
	p.emitters = cluster.NewEmitters(p.node, s.mgr, p.reg, peers, mirrors, exp, log)
	rpc, err := natsbus.ServeRPC(p.nc, p.node, owner{p.emitters, s.mgr}, log)
	if err != nil {
		return err
	}
	s.push("cluster rpc", rpc.Close)
	tl, err := natsbus.NewTrackerLog(ctx, p.js, p.nc, s.hub, natsbus.TrackerOptions{Replicas: p.replicas, Log: log})
	if err != nil {
		return err
	}
	s.push("tracker log", tl.Close)
	s.tracker = tracker.NewWith(tl, tracker.Options{})
	if err := p.emitters.Register(ctx); err != nil {
		log.Error("some emitters could not be registered", "err", err)
	}
	s.cluster = p
	log.Info("joined cluster", "mode", p.mode, "cluster", p.name, "node", p.node, "replicas", p.replicas)
	return nil
}

func (s *system) connectNATS(ctx context.Context, p *clusterParts) error {
	cc := s.cfg.Cluster
	opts := []nats.Option{nats.Name("sidestream " + p.node), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	var err error
	if cc.NATSURL != "" {
		p.mode = "external"
		tlsOpts, err := natsTLS(cc)
		if err != nil {
			return err
		}
		opts = append(opts, tlsOpts...)
		if p.nc, err = nats.Connect(cc.NATSURL, append(opts, nats.RetryOnFailedConnect(true))...); err != nil {
			return fmt.Errorf("connect to nats %s: %w", cc.NATSURL, err)
		}
	} else {
		p.mode = "embedded"
		p.natsd, err = natsd.Start(ctx, natsd.Options{Node: p.node, Cluster: cc.Name, Listen: cc.Listen, Routes: cc.Routes,
			ClientListen: cc.NATSListen, StoreDir: filepath.Join(s.cfg.DataDir, "nats")}, s.log.With("component", "nats"))
		if err != nil {
			return err
		}
		s.push("nats server", p.natsd.Close)
		if p.nc, err = p.natsd.Connect(opts...); err != nil {
			return err
		}
	}
	s.push("nats connection", func(context.Context) error { return p.nc.Drain() })
	if p.js, err = jetstream.New(p.nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

func natsTLS(cc config.Cluster) ([]nats.Option, error) {
	var opts []nats.Option
	if cc.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cc.NATSCreds))
	}
	if cc.NATSTLSCA == "" && cc.NATSTLSCert == "" {
		return opts, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cc.NATSTLSCA != "" {
		pem, err := os.ReadFile(cc.NATSTLSCA)
		if err != nil {
			return nil, fmt.Errorf("cluster.nats_tls_ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster.nats_tls_ca: no certificate in %s", cc.NATSTLSCA)
		}
	}
	if cc.NATSTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cc.NATSTLSCert, cc.NATSTLSKey)
		if err != nil {
			return nil, fmt.Errorf("cluster.nats_tls_cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return append(opts, nats.Secure(tc)), nil
}

func nodeName(cc config.Cluster) string {
	if cc.NodeName != "" {
		return cc.NodeName
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "sidestream"
}

// replicas is the configured count, or 1 for one or two nodes and 3 from
// three (routes name the other nodes; a list that names this node too
// counts it once).
func replicas(cc config.Cluster) int {
	if cc.Replicas > 0 {
		return cc.Replicas
	}
	hosts := map[string]bool{}
	for _, r := range cc.Routes {
		if u, err := url.Parse(r); err == nil {
			hosts[u.Host] = true
		}
	}
	if cc.Listen != "" && !hosts[cc.Listen] {
		hosts[cc.Listen] = true
	}
	if len(hosts) >= 3 {
		return 3
	}
	return 1
}

func advertise(cfg config.Config) string {
	if cfg.Cluster.Advertise != "" {
		return strings.TrimRight(cfg.Cluster.Advertise, "/")
	}
	return "http://" + cfg.Listen
}

// owner serves the other nodes' requests: creates, deletes and commands
// through the cluster view (they are this node's), streams from the
// manager only (never a mirror).
type owner struct {
	*cluster.Emitters
	mgr *emitter.Manager
}

func (o owner) LocalStream(id string) (*stream.Stream, error) { return o.mgr.Stream(id) }

// view is GET /api/v1/cluster.
func (p *clusterParts) view(context.Context) api.Cluster {
	out := api.Cluster{Mode: p.mode, Name: p.name, Node: p.node, Replicas: p.replicas}
	counts := p.reg.Counts()
	for _, n := range p.nodes.List() {
		health := "down"
		if n.Up {
			health = "up"
		}
		out.Nodes = append(out.Nodes, api.Node{Name: n.Name, Advertise: n.Advertise, Health: health, Self: n.Name == p.node,
			Emitters: counts[n.Name], Version: n.Version, LastSeen: n.LastSeen})
	}
	ns := &api.NATSState{Connected: p.nc.IsConnected(), Server: p.nc.ConnectedServerName(), JetStream: api.JetStreamState{Enabled: true}}
	if p.natsd != nil {
		st := p.natsd.State()
		for _, r := range st.Routes {
			ns.Routes = append(ns.Routes, api.Route{Remote: r.Remote, Addr: r.Addr})
		}
		ns.JetStream = api.JetStreamState{Enabled: true, MetaLeader: st.MetaLeader, Streams: st.Streams, Consumers: st.Consumers, Bytes: st.Bytes}
	}
	out.NATS = ns
	return out
}
