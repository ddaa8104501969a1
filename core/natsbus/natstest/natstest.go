// Package natstest starts real embedded NATS servers with JetStream on
// random loopback ports for tests: one server, or a cluster joined by
// routes. It is test support; production code never imports it.
package natstest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is one embedded NATS server of a test.
type Server struct {
	*server.Server
	Name     string
	StoreDir string
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.ClientURL() }

// Connect opens a client connection, closed when the test ends.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", s.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func options(t testing.TB, name, cluster string) *server.Options {
	return &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{Name: cluster, Host: "127.0.0.1", Port: -1},
	}
}

func start(t testing.TB, o *server.Options) *Server {
	t.Helper()
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("natstest: new server %s: %v", o.ServerName, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		t.Fatalf("natstest: server %s not ready within 10s", o.ServerName)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return &Server{Server: ns, Name: o.ServerName, StoreDir: o.StoreDir}
}

// RunServer starts one JetStream server (no cluster).
func RunServer(t testing.TB) *Server {
	t.Helper()
	o := options(t, "solo", "")
	o.Cluster = server.ClusterOpts{}
	return start(t, o)
}

// RunCluster starts n JetStream servers, each routed to all the others,
// and waits until every one has its routes and JetStream is current.
func RunCluster(t testing.TB, n int) []*Server {
	t.Helper()
	ports := FreePorts(t, n)
	var routes []*url.URL
	for _, p := range ports {
		u, _ := url.Parse(fmt.Sprintf("nats-route://127.0.0.1:%d", p))
		routes = append(routes, u)
	}
	servers := make([]*Server, n)
	errs := make(chan error, n)
	for i := range n {
		o := options(t, fmt.Sprintf("n%d", i+1), "test")
		o.Cluster.Port = ports[i]
		o.Routes = routes
		go func() {
			s, err := startNoWait(o)
			servers[i] = s
			errs <- err
		}()
	}
	var failed error
	for range n {
		if err := <-errs; err != nil && failed == nil {
			failed = err
		}
	}
	// Every server that started is shut down and waited for, also when
	// another failed: one left running outlives the test (goleak).
	t.Cleanup(func() { shutdownCluster(servers) })
	if failed != nil {
		t.Fatalf("natstest: %v", failed)
	}
	// Each pair of servers is joined by a pool of route connections, each
	// account's traffic on one of them, plus one of the system account's
	// own: until all are up, the messages of an account whose route is
	// missing do not cross between that pair (a republished message is
	// lost, not late), so "a route to each peer" is not yet a cluster.
	conns := (n - 1) * (server.DEFAULT_ROUTE_POOL_SIZE + 1)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ready := true
		for _, s := range servers {
			if s.NumRoutes() < conns || !s.JetStreamIsCurrent() {
				ready = false
			}
		}
		if ready {
			return servers
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("natstest: cluster of %d did not form within 30s", n)
	return nil
}

// shutdownCluster stops the members of a cluster together, once each
// one still running reports JetStream healthy (bounded), and waits for
// them. Stopped one at a time, the last members ran on alone while a
// stream follower among them could still be catching up from a leader
// already gone, and nats-server recreates a stream whose catch-up failed
// on a goroutine Shutdown does not wait for. This narrows that window;
// it did not end a rare leak goleak still reports (two stores'
// fileStore.flushStreamStateLoop outliving every WaitForShutdown, made
// by one goroutine already gone), whose path is not yet known.
func shutdownCluster(servers []*Server) {
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range servers {
		for s != nil && s.Running() && s.Healthz(nil).Status != "ok" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		if s != nil {
			wg.Go(s.Shutdown) // returns at once if the test shut it down
		}
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			s.WaitForShutdown()
		}
	}
}

func startNoWait(o *server.Options) (*Server, error) {
	ns, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("new server %s: %w", o.ServerName, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("server %s not ready within 30s", o.ServerName)
	}
	return &Server{Server: ns, Name: o.ServerName, StoreDir: o.StoreDir}, nil
}

// FreePorts returns n loopback TCP ports, free a moment ago, that no
// other caller in this process was given. They come from below the
// kernel's ephemeral range where it is known: a port from that range,
// once released, can be taken by any bind to port 0 or outgoing
// connection (an embedded NATS server's random client port took a route
// port that way, and the node never became ready), while a port below
// it is only ever taken by an explicit bind.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	lo, hi := fixedPortRange()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			t.Fatalf("natstest: no free loopback port in [%d, %d) after %d tries", lo, hi, tries)
		}
		port := 0
		if hi > lo {
			if port = lo + rand.IntN(hi-lo); portsGiven[port] {
				continue
			}
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if port == 0 {
				t.Fatalf("natstest: free port: %v", err)
			}
			continue // taken by someone else: draw again
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			ports = append(ports, port)
		}
	}
	return ports
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// fixedPortRange is where FreePorts draws from: [10000, start of the
// ephemeral range) on Linux, or an empty range (port 0, the kernel's
// choice) where the ephemeral range is unknown.
func fixedPortRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil || first <= 11000 {
		return 0, 0
	}
	return 10000, first
}
