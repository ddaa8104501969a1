package check

import (
	"context"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	natsserver "github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// serveArgs returns the container's args as flag name → value ("serve"
// first, then --name=value or --name value).
func serveArgs(t *testing.T, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %v do not start with serve", args)
	}
	flags := map[string]string{}
	for i := 1; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			t.Fatalf("args %v: %q is not a flag", args, args[i])
		}
		if n, v, ok := strings.Cut(name, "="); ok {
			flags[n] = v
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			flags[name] = args[i+1]
			i++
			continue
		}
		flags[name] = ""
	}
	return flags
}

var (
	helpOnce  sync.Once
	serveHelp map[string]bool
	helpErr   error
)

// serveFlags are the flags `sidestream serve --help` of the real binary lists.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin := sidestream(t)
	helpOnce.Do(func() {
		out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
		if err != nil {
			helpErr = err
			return
		}
		serveHelp = map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
			serveHelp[m[1]] = true
		}
	})
	if helpErr != nil || len(serveHelp) < 10 {
		t.Fatalf("sidestream serve --help: %v (%d flags)", helpErr, len(serveHelp))
	}
	return serveHelp
}

// unknownFlags lists the flags of args that serve does not have.
func unknownFlags(t *testing.T, flags map[string]string) []string {
	t.Helper()
	known := serveFlags(t)
	var bad []string
	for name := range flags {
		if !known[name] {
			bad = append(bad, name)
		}
	}
	slices.Sort(bad)
	return bad
}

// sidecarContainer is the DaemonSet's sidestream container.
func sidecarContainer(t *testing.T, ds *appsv1.DaemonSet) corev1.Container {
	t.Helper()
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name == "sidestream" {
			return c
		}
	}
	t.Fatalf("DaemonSet %s has no sidestream container", ds.Name)
	return corev1.Container{}
}

// Every flag a manifest or the compose file passes to serve exists in the
// real binary's serve --help; a misspelt one is caught.
func TestDeployFlagsExist(t *testing.T) {
	for _, file := range []string{"kubernetes/sidestream.yaml", "kubernetes/sidestream-cluster.yaml", "kubernetes/sidestream-nats.yaml"} {
		_, ds, _ := sidecarManifests(t, file)
		if bad := unknownFlags(t, serveArgs(t, sidecarContainer(t, ds).Args)); len(bad) > 0 {
			t.Errorf("%s: serve has no flag %v", file, bad)
		}
	}
	for _, svc := range loadCompose(t).Services {
		if bad := unknownFlags(t, serveArgs(t, svc.Command)); len(bad) > 0 {
			t.Errorf("compose %s: serve has no flag %v", svc.Name, bad)
		}
	}
	if bad := unknownFlags(t, serveArgs(t, []string{"serve", "--cluster-nmae=x", "--listen=:1"})); !slices.Equal(bad, []string{"cluster-nmae"}) {
		t.Errorf("a misspelt flag gave %v, want it reported", bad)
	}
}

// fieldEnv checks that the container's env var name comes from the pod's
// field path (the downward API).
func fieldEnv(t *testing.T, c corev1.Container, name, path string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
				t.Errorf("env %s is not the downward API's %s: %+v", name, path, e)
			}
			return
		}
	}
	t.Errorf("no env %s (from %s)", name, path)
}

// clusterIdentity checks what both cluster DaemonSets share: the node name
// is the Kubernetes node's, the advertised URL the pod's IP on the HTTP port.
func clusterIdentity(t *testing.T, c corev1.Container, flags map[string]string) {
	t.Helper()
	fieldEnv(t, c, "NODE_NAME", "spec.nodeName")
	fieldEnv(t, c, "POD_IP", "status.podIP")
	if flags["node-name"] != "$(NODE_NAME)" {
		t.Errorf("--node-name = %q, want $(NODE_NAME)", flags["node-name"])
	}
	if want := "http://$(POD_IP):" + strconv.Itoa(int(containerPort(t, c, "http"))); flags["advertise"] != want {
		t.Errorf("--advertise = %q, want %q", flags["advertise"], want)
	}
	if flags["cluster-replicas"] == "" {
		t.Error("--cluster-replicas unset: the default counts route hosts, and one Service name counts once")
	}
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %q", c.Name, name)
	return 0
}

// headless returns the Service named name, which must be headless, publish
// pods before they are ready (peers find each other before any is ready)
// and select the pod labels.
func headless(t *testing.T, services []*corev1.Service, name string, podLabels map[string]string) *corev1.Service {
	t.Helper()
	for _, svc := range services {
		if svc.Name != name {
			continue
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("service %s: clusterIP %q, publishNotReadyAddresses %v; want a headless service that publishes unready pods",
				name, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
		}
		for k, v := range svc.Spec.Selector {
			if podLabels[k] != v {
				t.Errorf("service %s selects %s=%s, which the pods lack", name, k, v)
			}
		}
		return svc
	}
	t.Fatalf("no service %q", name)
	return nil
}

// servicePort is the port of svc that targets the container port named target.
func servicePort(t *testing.T, svc *corev1.Service, target string) int32 {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.String() == target {
			return p.Port
		}
	}
	t.Fatalf("service %s has no port targeting %q", svc.Name, target)
	return 0
}

// serviceHost checks that host is the DNS name of service in namespace
// ("name", "name.ns" or "name.ns.svc[.cluster.local]") and returns its port.
func serviceHost(t *testing.T, hostPort, service, namespace string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatalf("%q: %v", hostPort, err)
	}
	labels := strings.Split(host, ".")
	if labels[0] != service || (len(labels) > 1 && labels[1] != namespace) {
		t.Errorf("%s does not name service %s in namespace %s", host, service, namespace)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// The embedded-NATS DaemonSet routes to its peers through the headless
// Service on the port the container listens for routes on.
func TestKubernetesClusterDaemonSet(t *testing.T) {
	_, ds, services := sidecarManifests(t, "kubernetes/sidestream-cluster.yaml")
	c := sidecarContainer(t, ds)
	flags := serveArgs(t, c.Args)
	clusterIdentity(t, c, flags)
	if flags["cluster-name"] == "" || flags["nats-url"] != "" {
		t.Fatalf("want embedded cluster mode (--cluster-name, no --nats-url): %v", flags)
	}
	routePort := containerPort(t, c, "cluster")
	if _, p, err := net.SplitHostPort(flags["cluster-listen"]); err != nil || p != strconv.Itoa(int(routePort)) {
		t.Errorf("--cluster-listen %q does not listen on the container's cluster port %d", flags["cluster-listen"], routePort)
	}
	routes := strings.Split(flags["cluster-routes"], ",")
	for _, r := range routes {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats-route" {
			t.Fatalf("route %q is not nats-route://host:port", r)
		}
		svcName := strings.Split(u.Hostname(), ".")[0]
		svc := headless(t, services, svcName, ds.Spec.Template.Labels)
		if port := serviceHost(t, u.Host, svc.Name, ds.Namespace); port != int(servicePort(t, svc, "cluster")) {
			t.Errorf("route %s: port %d, but service %s serves routes on %d", r, port, svc.Name, servicePort(t, svc, "cluster"))
		}
	}
}

// The external-NATS DaemonSet connects to the client port of the NATS
// StatefulSet's headless Service, and has no embedded-cluster flags.
func TestKubernetesNATSDaemonSet(t *testing.T) {
	_, ds, _ := sidecarManifests(t, "kubernetes/sidestream-nats.yaml")
	c := sidecarContainer(t, ds)
	flags := serveArgs(t, c.Args)
	clusterIdentity(t, c, flags)
	for _, f := range []string{"cluster-name", "cluster-listen", "cluster-routes"} {
		if _, ok := flags[f]; ok {
			t.Errorf("--%s with --nats-url: the sidecar embeds no NATS server then", f)
		}
	}
	nats := readManifests(t, "kubernetes/nats.yaml")
	sts := nats.statefulSets[0]
	svc := headless(t, nats.services, sts.Spec.ServiceName, sts.Spec.Template.Labels)
	for _, raw := range strings.Split(flags["nats-url"], ",") {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "nats" {
			t.Fatalf("--nats-url %q is not nats://host:port", raw)
		}
		if port := serviceHost(t, u.Host, svc.Name, sts.Namespace); port != int(servicePort(t, svc, "client")) {
			t.Errorf("--nats-url %s: port %d is not the NATS client port %d", raw, port, servicePort(t, svc, "client"))
		}
	}
}

// The NATS StatefulSet runs three servers whose config the real NATS
// server accepts: JetStream on, stored on the claimed volume, routes to
// each pod's stable DNS name, ports as the container declares them.
func TestKubernetesNATSStatefulSet(t *testing.T) {
	m := readManifests(t, "kubernetes/nats.yaml")
	if len(m.statefulSets) != 1 || len(m.configMaps) != 1 || len(m.services) != 1 {
		t.Fatalf("want a StatefulSet, a ConfigMap and a Service: %d, %d, %d", len(m.statefulSets), len(m.configMaps), len(m.services))
	}
	sts := m.statefulSets[0]
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Fatalf("replicas %v, want 3", sts.Spec.Replicas)
	}
	headless(t, m.services, sts.Spec.ServiceName, sts.Spec.Template.Labels)
	c := sts.Spec.Template.Spec.Containers[0]
	fieldEnv(t, c, "POD_NAME", "metadata.name")
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(m.configMaps[0].Data["nats.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", sts.Name+"-1")
	opts, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects nats.conf: %v", err)
	}
	if opts.ServerName != sts.Name+"-1" || !opts.JetStream {
		t.Errorf("server_name %q (want the pod name), jetstream %v", opts.ServerName, opts.JetStream)
	}
	for name, port := range map[string]int{"client": opts.Port, "cluster": opts.Cluster.Port, "monitor": opts.HTTPPort} {
		if int(containerPort(t, c, name)) != port {
			t.Errorf("port %s: container %d, nats.conf %d", name, containerPort(t, c, name), port)
		}
	}
	var hosts []string
	for _, r := range opts.Routes {
		if r.Port() != strconv.Itoa(opts.Cluster.Port) {
			t.Errorf("route %s is not on the cluster port", r)
		}
		hosts = append(hosts, strings.Join(strings.Split(r.Hostname(), ".")[:2], "."))
	}
	want := []string{}
	for i := range 3 {
		want = append(want, sts.Name+"-"+strconv.Itoa(i)+"."+sts.Spec.ServiceName)
	}
	if !slices.Equal(hosts, want) {
		t.Errorf("routes %v, want each pod's DNS name %v", hosts, want)
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(opts.StoreDir, vm.MountPath+"/") && vm.Name == sts.Spec.VolumeClaimTemplates[0].Name {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("JetStream store %s is not on the claimed volume", opts.StoreDir)
	}
}

// loadCompose loads compose/cluster.yaml with the compose specification's
// own loader and schema validation (what `docker compose config` does).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	file := deployFile("compose/cluster.yaml")
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: types.Mapping{},
	})
	if err != nil {
		t.Fatalf("compose/cluster.yaml: %v", err)
	}
	return p
}

// The compose cluster has three nodes with distinct names, each routing to
// all three by service name on their route port, and advertising the host
// port its HTTP port is published on.
func TestComposeCluster(t *testing.T) {
	p := loadCompose(t)
	if len(p.Services) != 3 {
		t.Fatalf("%d services, want 3", len(p.Services))
	}
	names := map[string]bool{}
	for _, svc := range p.Services {
		flags := serveArgs(t, svc.Command)
		names[flags["node-name"]] = true
		_, listenPort, _ := net.SplitHostPort(flags["cluster-listen"])
		var routeHosts []string
		for _, r := range strings.Split(flags["cluster-routes"], ",") {
			u, err := url.Parse(r)
			if err != nil || u.Scheme != "nats-route" || u.Port() != listenPort {
				t.Errorf("%s: route %q is not nats-route://service:%s", svc.Name, r, listenPort)
				continue
			}
			routeHosts = append(routeHosts, u.Hostname())
		}
		slices.Sort(routeHosts)
		if !slices.Equal(routeHosts, slices.Sorted(maps.Keys(p.Services))) {
			t.Errorf("%s routes to %v, want every service", svc.Name, routeHosts)
		}
		if len(svc.Ports) != 1 || svc.Ports[0].HostIP != "127.0.0.1" {
			t.Fatalf("%s: want one port published on loopback: %+v", svc.Name, svc.Ports)
		}
		if want := "http://127.0.0.1:" + svc.Ports[0].Published; flags["advertise"] != want {
			t.Errorf("%s: --advertise %q, want %q", svc.Name, flags["advertise"], want)
		}
	}
	if len(names) != 3 || names[""] {
		t.Errorf("node names %v, want three distinct", names)
	}
}

// The compose loader refuses what docker compose would.
func TestComposeCheckRejectsBrokenFiles(t *testing.T) {
	src, err := os.ReadFile(deployFile("compose/cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]string{
		"unknown key":  strings.Replace(string(src), "restart: unless-stopped", "restrat: unless-stopped", 1),
		"wrong type":   strings.Replace(string(src), "hostname: node1", "hostname: [node1]", 1),
		"unknown port": strings.Replace(string(src), `"127.0.0.1:9001:9000"`, `"127.0.0.1:nine:9000"`, 1),
	} {
		if broken == string(src) {
			t.Fatalf("%s: the file changed, fix this test", name)
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "cluster.yaml")
		if err := os.WriteFile(file, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{WorkingDir: dir,
			ConfigFiles: []types.ConfigFile{{Filename: file}}, Environment: types.Mapping{}})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
