package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netLab is a small network the test builds out of network namespaces
// it creates (and deletes): one per node, each with an address on a
// bridge that lives in a namespace of its own. The host's network is
// never touched; the test reaches the nodes from the bridge namespace.
// Cutting routes inside the node namespaces partitions the nodes from
// each other while the test still reaches every one of them.
type netLab struct {
	t      *testing.T
	prefix string
	bridge string   // the bridge namespace
	nodes  []string // the node namespaces
}

// netLabInstall is what a machine needs for netLab (as root).
const netLabInstall = "apt-get install -y iproute2 (and run as root)"

// requireNetLab skips the test with one line when namespaces cannot be
// made here (not root, no ip), unless CI=true: CI runs as root and
// installs iproute2, so there a missing one fails.
func requireNetLab(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("ip")
	if os.Geteuid() == 0 && err == nil {
		return
	}
	msg := fmt.Sprintf("NETWORK PARTITION TEST NOT RUN: needs root and the ip command (uid %d, ip: %v); %s", os.Geteuid(), err, netLabInstall)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run must provide them)")
	}
	t.Skip(msg)
}

// newNetLab builds n node namespaces with addresses 10.77.0.1..n/24 on a
// bridge whose namespace holds 10.77.0.254.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	requireNetLab(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	l := &netLab{t: t, prefix: "ss-" + hex.EncodeToString(b[:])}
	l.bridge = l.prefix + "-br"
	t.Cleanup(l.close)
	l.ip("netns", "add", l.bridge)
	l.in(l.bridge, "ip", "link", "set", "lo", "up")
	l.in(l.bridge, "ip", "link", "add", "br0", "type", "bridge")
	l.in(l.bridge, "ip", "addr", "add", "10.77.0.254/24", "dev", "br0")
	l.in(l.bridge, "ip", "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%s-%d", l.prefix, i)
		l.ip("netns", "add", ns)
		l.nodes = append(l.nodes, ns)
		port := fmt.Sprintf("p%d", i)
		l.in(l.bridge, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.in(l.bridge, "ip", "link", "set", port, "master", "br0", "up")
		l.in(ns, "ip", "link", "set", "lo", "up")
		l.in(ns, "ip", "addr", "add", l.Addr(i)+"/24", "dev", "eth0")
		l.in(ns, "ip", "link", "set", "eth0", "up")
	}
	return l
}

// Addr is node i's address (1-based).
func (l *netLab) Addr(i int) string { return fmt.Sprintf("10.77.0.%d", i) }

// Wrap is the command that runs a program in node i's namespace.
func (l *netLab) Wrap(i int) []string { return []string{"ip", "netns", "exec", l.nodes[i-1]} }

// Isolate cuts node i off from the other nodes, both ways (the bridge,
// and so the test, still reaches it); Heal undoes it.
func (l *netLab) Isolate(i int) { l.routes(i, "add") }

// Heal reconnects node i to the other nodes.
func (l *netLab) Heal(i int) { l.routes(i, "del") }

func (l *netLab) routes(i int, verb string) {
	for j := 1; j <= len(l.nodes); j++ {
		if j == i {
			continue
		}
		l.in(l.nodes[i-1], "ip", "route", verb, "blackhole", l.Addr(j)+"/32")
		l.in(l.nodes[j-1], "ip", "route", verb, "blackhole", l.Addr(i)+"/32")
	}
}

// Client is an HTTP client whose connections start in the bridge
// namespace.
func (l *netLab) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: l.dialer(l.bridge), DisableCompression: true}}
}

// dialer dials from namespace ns: a socket belongs to the namespace of
// the thread that made it, so the dial runs on a locked thread switched
// into ns and back.
func (l *netLab) dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			return nil, err
		}
		defer target.Close()
		runtime.LockOSThread()
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer home.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("enter %s: %w", ns, err)
		}
		var d net.Dialer
		conn, dialErr := d.DialContext(ctx, network, addr)
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked: Go ends it with this goroutine
			// rather than reuse it in the wrong namespace.
			return conn, dialErr
		}
		runtime.UnlockOSThread()
		return conn, dialErr
	}
}

func (l *netLab) close() {
	for _, ns := range append(l.nodes, l.bridge) {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (l *netLab) in(ns string, args ...string) {
	l.t.Helper()
	l.ip(append([]string{"netns", "exec", ns}, args...)...)
}
