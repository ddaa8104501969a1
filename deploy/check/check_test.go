package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// repo is the repository root, relative to this package.
const repo = "../.."

func deployFile(name string) string { return filepath.Join(repo, "deploy", name) }

// parseDockerfile parses like `docker build` does and returns the stages.
func parseDockerfile(src []byte) ([]instructions.Stage, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	return stages, err
}

func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile(deployFile("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(src)
	if err != nil {
		t.Fatalf("Dockerfile does not parse: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	var build, final = stages[0], stages[len(stages)-1]
	var static, copied, user, health bool
	for _, cmd := range build.Commands {
		if r, ok := cmd.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "CGO_ENABLED=0") {
			static = true
		}
	}
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			copied = copied || c.From == build.Name
		case *instructions.UserCommand:
			user = c.User != "" && c.User != "root" && !strings.HasPrefix(c.User, "0")
		case *instructions.HealthCheckCommand:
			health = c.Health != nil && len(c.Health.Test) > 0 && c.Health.Test[0] != "NONE"
		}
	}
	for what, ok := range map[string]bool{"static (CGO_ENABLED=0) build": static, "binary copied from the build stage": copied,
		"non-root USER in the final stage": user, "HEALTHCHECK": health} {
		if !ok {
			t.Errorf("Dockerfile lacks %s", what)
		}
	}
}

// The parser must reject what docker would: proves the check can fail.
func TestDockerfileCheckRejectsBrokenFiles(t *testing.T) {
	for name, src := range map[string]string{
		"unknown instruction": "FROM alpine\nRUNN true\n",
		"bad flag":            "FROM alpine\nHEALTHCHECK --intervl=5s CMD true\n",
		"no FROM":             "RUN true\n",
	} {
		if _, err := parseDockerfile([]byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// decodeStrict decodes one YAML document into out, refusing unknown or
// misspelled fields and wrong types (what kubeconform -strict does).
func decodeStrict(doc []byte, out any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// manifests are the objects of one manifest file, by kind.
type manifests struct {
	configMaps   []*corev1.ConfigMap
	daemonSets   []*appsv1.DaemonSet
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
}

// loadManifests decodes each document by its kind into the typed API object.
func loadManifests(src []byte) (manifests, error) {
	var m manifests
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(src), -1) {
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return m, fmt.Errorf("document %d: %w", i, err)
		}
		var out any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ConfigMap":
			m.configMaps = append(m.configMaps, &corev1.ConfigMap{})
			out = m.configMaps[len(m.configMaps)-1]
		case "apps/v1 DaemonSet":
			m.daemonSets = append(m.daemonSets, &appsv1.DaemonSet{})
			out = m.daemonSets[len(m.daemonSets)-1]
		case "apps/v1 StatefulSet":
			m.statefulSets = append(m.statefulSets, &appsv1.StatefulSet{})
			out = m.statefulSets[len(m.statefulSets)-1]
		case "v1 Service":
			m.services = append(m.services, &corev1.Service{})
			out = m.services[len(m.services)-1]
		default:
			return m, fmt.Errorf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
		if err := decodeStrict([]byte(doc), out); err != nil {
			return m, fmt.Errorf("document %d (%s): %w", i, meta.Kind, err)
		}
	}
	return m, nil
}

// kubernetesFiles are every manifest file under deploy/kubernetes.
var kubernetesFiles = []string{"kubernetes/sidestream.yaml", "kubernetes/sidestream-cluster.yaml",
	"kubernetes/sidestream-nats.yaml", "kubernetes/nats.yaml"}

// readManifests decodes deploy/<file>.
func readManifests(t *testing.T, file string) manifests {
	t.Helper()
	src, err := os.ReadFile(deployFile(file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadManifests(src)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

// sidecarManifests reads a sidestream manifest file: one ConfigMap, one
// DaemonSet and the Services.
func sidecarManifests(t *testing.T, file string) (*corev1.ConfigMap, *appsv1.DaemonSet, []*corev1.Service) {
	t.Helper()
	m := readManifests(t, file)
	if len(m.configMaps) != 1 || len(m.daemonSets) != 1 || len(m.services) == 0 || len(m.statefulSets) != 0 {
		t.Fatalf("%s: want a ConfigMap, a DaemonSet and Services, got %d, %d, %d (and %d StatefulSets)",
			file, len(m.configMaps), len(m.daemonSets), len(m.services), len(m.statefulSets))
	}
	return m.configMaps[0], m.daemonSets[0], m.services
}

func TestKubernetesManifests(t *testing.T) {
	for _, file := range []string{"kubernetes/sidestream.yaml", "kubernetes/sidestream-cluster.yaml", "kubernetes/sidestream-nats.yaml"} {
		t.Run(file, func(t *testing.T) { checkSidecarManifests(t, file) })
	}
}

// checkSidecarManifests checks what every sidestream DaemonSet needs.
func checkSidecarManifests(t *testing.T, file string) {
	cm, ds, services := sidecarManifests(t, file)
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	for name, want := range map[string]string{"liveness": "/healthz", "readiness": "/readyz"} {
		p := probes[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			t.Errorf("%s probe is not GET %s: %+v", name, want, p)
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("container resources incomplete: %+v", c.Resources)
	}
	var guestLogs, config bool
	for _, vm := range c.VolumeMounts {
		guestLogs = guestLogs || (vm.Name == "guest-logs" && vm.ReadOnly)
		config = config || vm.Name == "config"
	}
	if !guestLogs || !config {
		t.Errorf("want guest logs mounted read-only and the config map mounted: %+v", c.VolumeMounts)
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod does not require a non-root user")
	}
	sel := ds.Spec.Selector.MatchLabels
	for k, v := range sel {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template", k, v)
		}
		for _, svc := range services {
			if svc.Spec.Selector[k] != v {
				t.Errorf("selector %s=%s does not match service %s", k, v, svc.Name)
			}
		}
	}
	if _, ok := cm.Data["sidestream.yaml"]; !ok {
		t.Error("config map has no sidestream.yaml")
	}
}

func TestKubernetesCheckRejectsBrokenManifests(t *testing.T) {
	src, err := os.ReadFile(deployFile("kubernetes/sidestream.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nats, err := os.ReadFile(deployFile("kubernetes/nats.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]string{
		"misspelled field":         strings.Replace(string(src), "readinessProbe:", "readynessProbe:", 1),
		"wrong type":               strings.Replace(string(src), "containerPort: 9000", "containerPort: http", 1),
		"unknown kind":             strings.Replace(string(src), "kind: DaemonSet", "kind: DaemonSett", 1),
		"misspelled StatefulSet":   strings.Replace(string(nats), "volumeClaimTemplates:", "volumeClaimTemplate:", 1),
		"StatefulSet replicas str": strings.Replace(string(nats), "replicas: 3", "replicas: three", 1),
	} {
		if broken == string(src) {
			t.Fatalf("%s: the manifest changed, fix this test", name)
		}
		if _, err := loadManifests([]byte(broken)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sidestream builds the real binary once.
func sidestream(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sidestream-deploy-check-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sidestream")
		cmd := exec.Command("go", "build", "-o", binPath, "./sidecar/cmd/sidestream")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// The example config and the ConfigMap's config are accepted by the real
// binary's validation.
func TestConfigsAreValid(t *testing.T) {
	files := []string{deployFile("sidestream.example.yaml")}
	for i, k := range []string{"kubernetes/sidestream.yaml", "kubernetes/sidestream-cluster.yaml", "kubernetes/sidestream-nats.yaml"} {
		cm, _, _ := sidecarManifests(t, k)
		path := filepath.Join(t.TempDir(), fmt.Sprintf("configmap-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cm.Data["sidestream.yaml"]), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	for _, file := range files {
		cmd := exec.Command(sidestream(t), "config", "print", "--config", file)
		cmd.Env = append(os.Environ(), "SIDESTREAM_CONFIG=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", file, err, out)
		}
	}
}

// systemd-analyze verify reports problems as warnings with exit 0, so any
// output fails. ExecStart points at the freshly built binary, since verify
// checks that the executable exists.
func TestSystemdUnit(t *testing.T) {
	src, err := os.ReadFile(deployFile("systemd/sidestream.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Restart=always", "KillMode=mixed", "StateDirectory=sidestream", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "PrivateTmp=yes"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(src) {
			t.Errorf("unit lacks %s", want)
		}
	}
	verify := func(unit string) string {
		path := filepath.Join(t.TempDir(), "sidestream.service")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/sidestream", sidestream(t))), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v: %s", err, out)
		}
		return string(out)
	}
	if out := verify(string(src)); out != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	if out := verify(strings.Replace(string(src), "Restart=always", "Restart=alwayz", 1)); out == "" {
		t.Error("systemd-analyze accepted a broken unit: the check cannot fail")
	}
}

// Every series the telemetry package exposes has a panel (the names are
// telemetry.PrometheusNames; that package is internal to the main module).
var seriesNames = []string{
	"sidestream_stream_subscribers", "sidestream_events_published_total", "sidestream_events_delivered_total",
	"sidestream_events_dropped_total", "sidestream_stream_gaps_total", "sidestream_stream_write_size",
	"sidestream_stream_write_bytes", "sidestream_plugin_state", "sidestream_plugin_restarts_total",
	"sidestream_plugin_instances", "rpc_client_call_duration_seconds", "sidestream_store_commit_duration_seconds",
	"sidestream_store_commit_size", "sidestream_queue_depth", "sidestream_queue_claims_total",
	"http_server_request_duration_seconds", "sidestream_command_duration_seconds", "sidestream_command_batch_size",
}

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(deployFile("grafana/sidestream-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		UID    string
		Panels []struct {
			ID      int
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, name := range seriesNames {
		if !strings.Contains(all, name) {
			t.Errorf("no panel queries %s", name)
		}
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard needs a title and a uid")
	}
}
