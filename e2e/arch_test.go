package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// archModule is the module whose layering the architecture test enforces.
const archModule = "github.com/sidestream/sidestream"

// archPackage is the part of `go list -json` the rules read.
type archPackage struct {
	ImportPath   string
	Doc          string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

// archImport is one import edge target, classified once so rules can talk in
// module-relative paths ("core/bolt") for the project and full paths otherwise.
type archImport struct {
	full    string
	path    string // module-relative when project is true
	project bool
}

// archRule forbids a set of import edges from a set of packages.
type archRule struct {
	name string
	why  string
	// prodOnly exempts test files (TestImports, XTestImports) from the rule.
	prodOnly bool
	// scope reports whether the rule governs the module-relative package.
	scope func(pkg string) bool
	// forbidden reports whether pkg importing imp breaks the rule.
	forbidden func(pkg string, imp archImport) bool
}

// archViolation is one broken rule; its String names package and import so a
// failure says exactly which edge to remove.
type archViolation struct {
	Pkg    string
	Import string // empty for package-level rules
	Rule   string
	Why    string
	InTest bool
}

func (v archViolation) String() string {
	where := ""
	if v.InTest {
		where = " (in test files)"
	}
	if v.Import == "" {
		return fmt.Sprintf("%s%s: rule %s: %s", v.Pkg, where, v.Rule, v.Why)
	}
	return fmt.Sprintf("%s imports %s%s: rule %s: %s", v.Pkg, v.Import, where, v.Rule, v.Why)
}

// archAdapters are wired together in exactly one place (sidecar/internal/app,
// or a main under sidecar/cmd), so the rest of the code stays testable with
// real in-process parts and swapping an adapter touches one package.
var archAdapters = []string{"core/bolt", "core/natsbus", "sidecar/internal/pluginhost"}

// archTopLevel is the fixed top-level layout (docs/ARCHITECTURE.md); a package outside
// it would escape every rule below.
var archTopLevel = []string{"core", "plugins", "sidecar", "web", "e2e"}

var archRules = []archRule{
	{
		name:      "core-pure",
		why:       "core is the pure domain and knows nothing above it (no sidecar, plugins, web, Hertz, go-plugin or gRPC)",
		scope:     archIn("core"),
		forbidden: archCoreForbidden,
	},
	{
		name:      "bbolt-adapter",
		why:       "only the core/bolt adapter may use bbolt (e2e may, to fabricate foreign state files)",
		scope:     func(pkg string) bool { return !archUnder(pkg, "core/bolt") && !archUnder(pkg, "e2e") },
		forbidden: archExternal("go.etcd.io/bbolt"),
	},
	{
		name: "nats-adapter",
		why:  "inside core only the core/natsbus adapter may use NATS",
		scope: func(pkg string) bool {
			return archUnder(pkg, "core") && !archUnder(pkg, "core/natsbus")
		},
		forbidden: archExternal("github.com/nats-io"),
	},
	{
		name:      "sdk-standalone",
		why:       "plugins/sdk is what plugin authors import; it must not drag in core, sidecar, web or the built-ins",
		scope:     archIn("plugins/sdk"),
		forbidden: archProject("core", "sidecar", "web", "plugins/builtin", "plugins/cmd", "e2e"),
	},
	{
		name:      "builtin-uses-sdk",
		why:       "built-in plugins and their binaries use only plugins/sdk (and each other), like any external plugin",
		scope:     archIn("plugins/builtin", "plugins/cmd"),
		forbidden: archProjectExcept("plugins/sdk", "plugins/builtin"),
	},
	{
		name:      "proto-leaf",
		why:       "the generated plugin contract depends on nothing of the project",
		scope:     archIn("plugins/proto"),
		forbidden: archProjectExcept("plugins/proto"),
	},
	{
		name:      "web-leaf",
		why:       "web (livedoc assets) imports nothing of the project",
		scope:     archIn("web"),
		forbidden: archProjectExcept("web"),
	},
	{
		name:      "api-leaf",
		why:       "sidecar/api holds the wire types any Go program may import: it depends on nothing of the project and no third-party module",
		scope:     archIn("sidecar/api"),
		forbidden: archAPIForbidden,
	},
	{
		name:     "public-clients",
		why:      "sidecar/apiclient and sidecar/queueclient are for any Go program: they use sidecar/api, apiclient's error type, and no server package (sidecar/internal/jsonwalk, the frame walker, and sidecar/internal/wire, the wire formats both sides share, excepted)",
		prodOnly: true,
		scope:    archIn("sidecar/apiclient", "sidecar/queueclient"),
		forbidden: func(_ string, imp archImport) bool {
			return imp.project && !archUnderAny(imp.path, "sidecar/api", "sidecar/apiclient", "sidecar/internal/jsonwalk", "sidecar/internal/wire")
		},
	},
	{
		name:      "sidecar-deps",
		why:       "sidecar may use core, plugins/sdk, plugins/proto and web; plugins/builtin only from sidecar/cmd/sidestream (self re-exec)",
		scope:     archIn("sidecar"),
		forbidden: archSidecarForbidden,
	},
	{
		name:  "otel-sdk-in-telemetry",
		why:   "only sidecar/internal/telemetry may use the OpenTelemetry SDK and exporters; everything else uses the API",
		scope: archNotIn("sidecar/internal/telemetry"),
		forbidden: archExternal("go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters",
			"go.opentelemetry.io/contrib/exporters"),
	},
	{
		name:      "natsd-in-app",
		why:       "the embedded NATS server (sidecar/internal/natsd) is started only by sidecar/internal/app",
		prodOnly:  true,
		scope:     archNotIn("sidecar/internal/app", "sidecar/internal/natsd"),
		forbidden: archProject("sidecar/internal/natsd"),
	},
	{
		name:      "sse-in-wire",
		why:       "SSE is encoded and parsed in one package, sidecar/internal/wire (with hertz-contrib/sse); everything else calls it",
		prodOnly:  true,
		scope:     archNotIn("sidecar/internal/wire"),
		forbidden: archExternal("github.com/hertz-contrib/sse"),
	},
	{
		name:      "adapters-wired-in-app",
		why:       "adapters (core/bolt, core/natsbus, sidecar/internal/pluginhost) are wired only in sidecar/internal/app and sidecar/cmd",
		prodOnly:  true,
		scope:     archNotIn("sidecar/internal/app", "sidecar/cmd"),
		forbidden: archAdapterForbidden,
	},
}

// archCoreDeps is what core must not reach even transitively through a
// third-party module (a direct-import check alone would miss that).
var archCoreDeps = []string{
	"github.com/cloudwego", "github.com/hertz-contrib", "github.com/hashicorp/go-plugin", "google.golang.org/grpc",
}

func archUnder(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func archUnderAny(p string, prefixes ...string) bool {
	return slices.ContainsFunc(prefixes, func(prefix string) bool { return archUnder(p, prefix) })
}

func archIn(prefixes ...string) func(string) bool {
	return func(pkg string) bool { return archUnderAny(pkg, prefixes...) }
}

func archNotIn(prefixes ...string) func(string) bool {
	return func(pkg string) bool { return !archUnderAny(pkg, prefixes...) }
}

func archExternal(prefixes ...string) func(string, archImport) bool {
	return func(_ string, imp archImport) bool { return !imp.project && archUnderAny(imp.path, prefixes...) }
}

func archProject(prefixes ...string) func(string, archImport) bool {
	return func(_ string, imp archImport) bool { return imp.project && archUnderAny(imp.path, prefixes...) }
}

func archProjectExcept(allowed ...string) func(string, archImport) bool {
	return func(_ string, imp archImport) bool { return imp.project && !archUnderAny(imp.path, allowed...) }
}

func archCoreForbidden(_ string, imp archImport) bool {
	if imp.project {
		return archUnderAny(imp.path, "sidecar", "plugins", "web", "e2e")
	}
	return archUnderAny(imp.path, archCoreDeps...)
}

func archSidecarForbidden(pkg string, imp archImport) bool {
	switch {
	case !imp.project:
		return false
	case archUnder(imp.path, "plugins/builtin"):
		return !archUnder(pkg, "sidecar/cmd/sidestream")
	default:
		return !archUnderAny(imp.path, "sidecar", "core", "plugins/sdk", "plugins/proto", "web")
	}
}

// archAPIForbidden allows sidecar/api the standard library (no dot in its
// first path element) and itself.
func archAPIForbidden(_ string, imp archImport) bool {
	if imp.project {
		return !archUnder(imp.path, "sidecar/api")
	}
	first, _, _ := strings.Cut(imp.path, "/")
	return strings.Contains(first, ".")
}

func archAdapterForbidden(pkg string, imp archImport) bool {
	if !imp.project {
		return false
	}
	for _, a := range archAdapters {
		if archUnder(imp.path, a) && !archUnder(pkg, a) {
			return true
		}
	}
	return false
}

// archClassify splits an import path into project-relative or external.
func archClassify(module, full string) archImport {
	if full == module {
		return archImport{full: full, path: "", project: true}
	}
	if rel, ok := strings.CutPrefix(full, module+"/"); ok {
		return archImport{full: full, path: rel, project: true}
	}
	return archImport{full: full, path: full}
}

// archCheck applies every rule to every package and returns all violations.
func archCheck(module string, pkgs []archPackage) []archViolation {
	var out []archViolation
	for _, p := range pkgs {
		out = append(out, archCheckPackage(module, p)...)
	}
	return out
}

func archCheckPackage(module string, p archPackage) []archViolation {
	self := archClassify(module, p.ImportPath)
	if !self.project {
		return []archViolation{{Pkg: p.ImportPath, Rule: "in-module", Why: "package is outside module " + module}}
	}
	pkg := self.path
	var out []archViolation
	add := func(imp, rule, why string, inTest bool) {
		out = append(out, archViolation{Pkg: p.ImportPath, Import: imp, Rule: rule, Why: why, InTest: inTest})
	}
	if p.Error != nil {
		add("", "loads", "go list reports an error, so its imports cannot be checked: "+p.Error.Err, false)
	}
	if !archUnderAny(pkg, archTopLevel...) {
		add("", "layout", "package is outside the fixed top level "+strings.Join(archTopLevel, ", "), false)
	}
	if strings.TrimSpace(p.Doc) == "" {
		add("", "package-doc", "package has no package doc comment (add one, e.g. in doc.go)", false)
	}
	testImports := slices.Concat(p.TestImports, p.XTestImports)
	for _, r := range archRules {
		if !r.scope(pkg) {
			continue
		}
		for _, full := range p.Imports {
			if r.forbidden(pkg, archClassify(module, full)) {
				add(full, r.name, r.why, false)
			}
		}
		if r.prodOnly {
			continue
		}
		for _, full := range testImports {
			if r.forbidden(pkg, archClassify(module, full)) {
				add(full, r.name, r.why, true)
			}
		}
	}
	if archUnder(pkg, "core") {
		for _, dep := range p.Deps {
			if archUnderAny(dep, archCoreDeps...) {
				add(dep, "core-pure-transitive", "core must not depend, even indirectly, on Hertz, go-plugin or gRPC", false)
			}
		}
	}
	return out
}

// archModuleRoot finds the directory holding go.mod, whatever the test's cwd.
func archModuleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatalf("not inside a Go module (GOMOD=%q)", gomod)
	}
	return filepath.Dir(gomod)
}

// archListPackages returns `go list` data for every package of the module.
func archListPackages(t *testing.T) []archPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-e",
		"-json=ImportPath,Doc,Imports,TestImports,XTestImports,Deps,Error", "./...")
	cmd.Dir = archModuleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []archPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p archPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestArchitecture enforces the dependency rules of docs/ARCHITECTURE.md on
// the real tree.
func TestArchitecture(t *testing.T) {
	t.Parallel()
	pkgs := archListPackages(t)
	archRequireRealTree(t, pkgs)
	for _, v := range archCheck(archModule, pkgs) {
		t.Error(v)
	}
}

// archRequireRealTree guards against a vacuous pass: the listing must hold the
// contract packages, and their imports must have been read.
func archRequireRealTree(t *testing.T, pkgs []archPackage) {
	t.Helper()
	byPath := map[string]archPackage{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for _, want := range []string{"core/event", "core/stream", "core/emitter", "plugins/sdk", "plugins/proto", "e2e"} {
		if _, ok := byPath[archModule+"/"+want]; !ok {
			t.Fatalf("go list did not report %s/%s; got %d packages", archModule, want, len(pkgs))
		}
	}
	proto := byPath[archModule+"/plugins/proto"]
	if !slices.Contains(proto.Imports, "google.golang.org/grpc") {
		t.Fatalf("plugins/proto imports not read from go list (got %v)", proto.Imports)
	}
}

// TestArchRulesRejectForbiddenEdges proves the checker itself: each forbidden
// edge in synthetic package data must be reported under the right rule, and
// each allowed edge must not be.
func TestArchRulesRejectForbiddenEdges(t *testing.T) {
	t.Parallel()
	const m = archModule
	pkg := func(path string, imports ...string) archPackage {
		return archPackage{ImportPath: m + "/" + path, Doc: "Package x does y.", Imports: imports}
	}
	withTest := func(p archPackage, imports ...string) archPackage {
		p.TestImports = imports
		return p
	}
	withXTest := func(p archPackage, imports ...string) archPackage {
		p.XTestImports = imports
		return p
	}
	withDeps := func(p archPackage, deps ...string) archPackage {
		p.Deps = deps
		return p
	}
	tests := []struct {
		name string
		pkg  archPackage
		want []string // rule names, in order of report; nil means clean
	}{
		{"core uses hertz", pkg("core/stream", "github.com/cloudwego/hertz/pkg/app"), []string{"core-pure"}},
		{"core uses hertz-contrib", pkg("core/stream", "github.com/hertz-contrib/websocket"), []string{"core-pure"}},
		{"core uses go-plugin", pkg("core/emitter", "github.com/hashicorp/go-plugin"), []string{"core-pure"}},
		{"core uses grpc subpackage", pkg("core/event", "google.golang.org/grpc/codes"), []string{"core-pure"}},
		{"core uses sidecar", pkg("core/event", m+"/sidecar/internal/config"), []string{"core-pure"}},
		{"core uses plugins/sdk", pkg("core/emitter", m+"/plugins/sdk"), []string{"core-pure"}},
		{"core uses web", pkg("core/emitter", m+"/web"), []string{"core-pure"}},
		{"core uses core", pkg("core/stream", m+"/core/event", "context"), nil},
		{"core test uses hertz", withTest(pkg("core/stream"), "github.com/cloudwego/hertz"), []string{"core-pure"}},
		{"core reaches grpc indirectly", withDeps(pkg("core/stream"), "google.golang.org/grpc/status"), []string{"core-pure-transitive"}},
		{"core/stream uses bbolt", pkg("core/stream", "go.etcd.io/bbolt"), []string{"bbolt-adapter"}},
		{"sidecar uses bbolt", pkg("sidecar/internal/app", "go.etcd.io/bbolt"), []string{"bbolt-adapter"}},
		{"core/bolt uses bbolt", withXTest(pkg("core/bolt", "go.etcd.io/bbolt"), "go.etcd.io/bbolt"), nil},
		{"core/stream uses nats", pkg("core/stream", "github.com/nats-io/nats.go"), []string{"nats-adapter"}},
		{"core/natsbus uses nats", pkg("core/natsbus", "github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2/server"), nil},
		{"sidecar natsd embeds nats", pkg("sidecar/internal/natsd", "github.com/nats-io/nats-server/v2/server"), nil},
		{"core/natsbus/natstest uses nats", pkg("core/natsbus/natstest", "github.com/nats-io/nats-server/v2/server"), nil},
		{"core/queue uses nats server", pkg("core/queue", "github.com/nats-io/nats-server/v2/server"), []string{"nats-adapter"}},
		{"app starts natsd", pkg("sidecar/internal/app", m+"/sidecar/internal/natsd"), nil},
		{"httpapi starts natsd", pkg("sidecar/internal/httpapi", m+"/sidecar/internal/natsd"), []string{"natsd-in-app"}},
		{"main starts natsd", pkg("sidecar/cmd/sidestream", m+"/sidecar/internal/natsd"), []string{"natsd-in-app"}},
		{"natsd tests may use natsd", withXTest(pkg("e2e"), m+"/sidecar/internal/natsd"), nil},
		{"sdk uses core", pkg("plugins/sdk", m+"/core/event"), []string{"sdk-standalone"}},
		{"sdk uses sidecar", pkg("plugins/sdk/sdktest", m+"/sidecar/api"), []string{"sdk-standalone"}},
		{"sdk uses builtin", pkg("plugins/sdk", m+"/plugins/builtin/fibonacci"), []string{"sdk-standalone"}},
		{"sdk uses proto and go-plugin", pkg("plugins/sdk", m+"/plugins/proto", "github.com/hashicorp/go-plugin"), nil},
		{"builtin uses proto", pkg("plugins/builtin/fibonacci", m+"/plugins/proto"), []string{"builtin-uses-sdk"}},
		{"builtin uses core", pkg("plugins/builtin/log", m+"/core/event"), []string{"builtin-uses-sdk"}},
		{"plugin cmd uses sidecar", pkg("plugins/cmd/fibonacci", m+"/sidecar/api"), []string{"builtin-uses-sdk"}},
		{"plugin cmd uses sdk and builtin", pkg("plugins/cmd/fibonacci", m+"/plugins/sdk", m+"/plugins/builtin/fibonacci"), nil},
		{"proto uses sdk", pkg("plugins/proto", m+"/plugins/sdk"), []string{"proto-leaf"}},
		{"web uses core", pkg("web", m+"/core/event"), []string{"web-leaf"}},
		{"web uses embed", pkg("web", "embed", "net/http"), nil},
		{"sidecar internal uses builtin", pkg("sidecar/internal/app", m+"/plugins/builtin"), []string{"sidecar-deps"}},
		{"sidecar uses plugin cmd", pkg("sidecar/internal/stream", m+"/plugins/cmd/fibonacci"), []string{"sidecar-deps"}},
		{"sidecar uses e2e", pkg("sidecar/internal/bench", m+"/e2e"), []string{"sidecar-deps"}},
		{"api uses core", pkg("sidecar/api", m+"/core/event"), []string{"api-leaf"}},
		{"api uses a module", pkg("sidecar/api", "github.com/cloudwego/hertz/pkg/app"), []string{"api-leaf"}},
		{"api uses the standard library", pkg("sidecar/api", "encoding/json", "time"), nil},
		{"queue client uses the server", pkg("sidecar/queueclient", m+"/sidecar/internal/queueapi"), []string{"public-clients"}},
		{"api client uses core", pkg("sidecar/apiclient", m+"/core/event"), []string{"public-clients"}},
		{"queue client uses api and the walker", pkg("sidecar/queueclient", m+"/sidecar/api", m+"/sidecar/internal/jsonwalk"), nil},
		{"clients use the wire formats", pkg("sidecar/apiclient", m+"/sidecar/api", m+"/sidecar/internal/wire"), nil},
		{"queue client reports apiclient errors", pkg("sidecar/queueclient", m+"/sidecar/apiclient"), nil},
		{"main re-execs builtins", pkg("sidecar/cmd/sidestream", m+"/plugins/builtin", m+"/core/bolt",
			m+"/sidecar/internal/app", m+"/web", m+"/plugins/proto", m+"/plugins/sdk"), nil},
		{"httpapi uses otel sdk", pkg("sidecar/internal/httpapi", "go.opentelemetry.io/otel/sdk/metric"), []string{"otel-sdk-in-telemetry"}},
		{"core uses otel exporter", pkg("core/stream", "go.opentelemetry.io/otel/exporters/prometheus"), []string{"otel-sdk-in-telemetry"}},
		{"httpapi uses otel api", pkg("sidecar/internal/httpapi", "go.opentelemetry.io/otel/trace"), nil},
		{"telemetry uses otel sdk", pkg("sidecar/internal/telemetry", "go.opentelemetry.io/otel/sdk/trace",
			"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"), nil},
		{"stream encodes SSE itself", pkg("sidecar/internal/stream", "github.com/hertz-contrib/sse"), []string{"sse-in-wire"}},
		{"wire encodes SSE", pkg("sidecar/internal/wire", "github.com/hertz-contrib/sse", "github.com/hertz-contrib/websocket"), nil},
		{"httpapi uses core/bolt", pkg("sidecar/internal/httpapi", m+"/core/bolt"), []string{"adapters-wired-in-app"}},
		{"pluginhost uses core/bolt", pkg("sidecar/internal/pluginhost", m+"/core/bolt"), []string{"adapters-wired-in-app"}},
		{"core uses natsbus", pkg("core/stream", m+"/core/natsbus"), []string{"adapters-wired-in-app"}},
		{"stream uses pluginhost", pkg("sidecar/internal/stream", m+"/sidecar/internal/pluginhost"), []string{"adapters-wired-in-app"}},
		{"app wires adapters", pkg("sidecar/internal/app", m+"/core/bolt", m+"/core/natsbus", m+"/sidecar/internal/pluginhost"), nil},
		{"tests may use adapters", withXTest(withTest(pkg("sidecar/internal/httpapi"), m+"/core/bolt"), m+"/sidecar/internal/pluginhost"), nil},
		{"e2e tests use everything", withXTest(pkg("e2e"), m+"/sidecar/internal/app", m+"/core/bolt", m+"/plugins/builtin"), nil},
		{"no package doc", archPackage{ImportPath: m + "/core/event"}, []string{"package-doc"}},
		{"outside top level", pkg("tools/gen"), []string{"layout"}},
		{"outside module", archPackage{ImportPath: "example.com/other", Doc: "Package other."}, []string{"in-module"}},
		{"load error", archPackage{ImportPath: m + "/core/event", Doc: "Package event.", Error: &struct{ Err string }{"syntax error"}}, []string{"loads"}},
		{"several breaks reported", pkg("core/stream", "go.etcd.io/bbolt", "github.com/cloudwego/hertz"), []string{"core-pure", "bbolt-adapter"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := archCheck(m, []archPackage{tc.pkg})
			var rules []string
			for _, v := range got {
				rules = append(rules, v.Rule)
				msg := v.String()
				if !strings.Contains(msg, v.Pkg) || !strings.Contains(msg, v.Import) || !strings.Contains(msg, v.Rule) {
					t.Errorf("message %q does not name package, import and rule", msg)
				}
			}
			if !slices.Equal(rules, tc.want) {
				t.Errorf("rules broken = %v, want %v; violations: %v", rules, tc.want, got)
			}
		})
	}
}

// archBinary is the production binary: what it links is what ships.
const archBinary = "sidecar/cmd/sidestream"

// archTestSupport reports whether dep (a full import path) exists only to
// support tests and so must never be linked into the binary: the OTel
// SDK's tracetest, the project's *test helper packages (natstest, sdktest,
// queuetest, telemetrytest) and core/internal/memstore.
func archTestSupport(module, dep string) bool {
	imp := archClassify(module, dep)
	if !imp.project {
		return archUnder(dep, "go.opentelemetry.io/otel/sdk/trace/tracetest")
	}
	return strings.HasSuffix(filepath.Base(imp.path), "test") || archUnder(imp.path, "core/internal/memstore")
}

// TestBinaryLinksNoTestSupport fails when test-only code (in-memory
// exporters, embedded test servers, fakes) is linked into the sidestream
// binary, e.g. because a production option's type lives in such a package.
func TestBinaryLinksNoTestSupport(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-deps", "./"+archBinary)
	cmd.Dir = archModuleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v\n%s", archBinary, err, stderr.String())
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, archModule+"/sidecar/internal/telemetry") {
		t.Fatalf("go list -deps ./%s does not list the telemetry package; got %d deps", archBinary, len(deps))
	}
	for _, dep := range deps {
		if archTestSupport(archModule, dep) {
			t.Errorf("%s links test-support package %s: move what production needs out of it", archBinary, dep)
		}
	}
}

func TestArchTestSupport(t *testing.T) {
	t.Parallel()
	const m = archModule
	tests := []struct {
		dep  string
		want bool
	}{
		{"go.opentelemetry.io/otel/sdk/trace/tracetest", true},
		{m + "/core/natsbus/natstest", true},
		{m + "/plugins/sdk/sdktest", true},
		{m + "/core/queue/queuetest", true},
		{m + "/sidecar/internal/telemetry/telemetrytest", true},
		{m + "/core/internal/memstore", true},
		{m + "/core/natsbus", false},
		{m + "/sidecar/internal/telemetry", false},
		{"go.opentelemetry.io/otel/sdk/trace", false},
		{"testing", false}, // go-plugin links it; not ours to remove
	}
	for _, tc := range tests {
		if got := archTestSupport(m, tc.dep); got != tc.want {
			t.Errorf("archTestSupport(%s) = %v, want %v", tc.dep, got, tc.want)
		}
	}
}
