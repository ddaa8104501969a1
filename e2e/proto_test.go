package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// protoGenerator is a protoc plugin pinned to the version that generated the
// committed code; another version would produce a spurious diff.
type protoGenerator struct {
	name    string // executable, e.g. protoc-gen-go
	pkg     string // go install path
	version string // go install version
	// banner is what `name --version` prints for the pinned version.
	banner string
}

var protoGenerators = []protoGenerator{
	{
		name: "protoc-gen-go", pkg: "google.golang.org/protobuf/cmd/protoc-gen-go",
		version: "v1.36.12", banner: "protoc-gen-go v1.36.12",
	},
	{
		name: "protoc-gen-go-grpc", pkg: "google.golang.org/grpc/cmd/protoc-gen-go-grpc",
		version: "v1.6.2", banner: "protoc-gen-go-grpc 1.6.2",
	},
}

// protoDir is where the contract and its committed generated code live.
const protoDir = "plugins/proto"

// protocVersionLine matches the protoc version in the generated header. It is
// masked before comparing because the header records whatever protoc ran
// (Debian bookworm's 3.21.12 generated the committed files); the plugin
// version lines stay compared.
var protocVersionLine = regexp.MustCompile(`(?m)^// (- |\t)protoc +v?[0-9][^\n]*$`)

func protoInCI() bool { return os.Getenv("CI") == "true" }

// TestProtoGeneratedCodeIsFresh regenerates plugins/proto/*.pb.go with the
// command of generate.go into a temp dir and fails on any difference with
// the committed files, so a .proto edit without regeneration cannot land.
func TestProtoGeneratedCodeIsFresh(t *testing.T) {
	t.Parallel()
	root := archModuleRoot(t)
	src := filepath.Join(root, protoDir)
	out := t.TempDir()

	protoc := protoFindProtoc(t)
	args := protoGenerateArgs(t, src, out)
	for _, g := range protoGenerators {
		args = append([]string{"--plugin=" + g.name + "=" + protoFindGenerator(t, g)}, args...)
	}
	cmd := exec.Command(protoc, args...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", protoc, strings.Join(args, " "), err, b)
	}

	committed := protoGlob(t, src)
	generated := protoGlob(t, out)
	if !slices.Equal(committed, generated) {
		t.Fatalf("generated files %v, committed files %v: run `go generate ./%s/...` and commit", generated, committed, protoDir)
	}
	for _, name := range committed {
		want := protoRead(t, filepath.Join(out, name))
		got := protoRead(t, filepath.Join(src, name))
		if d := protoFirstDiff(got, want); d != "" {
			t.Errorf("%s/%s is stale: run `go generate ./%s/...` and commit.\n%s", protoDir, name, protoDir, d)
		}
	}
}

// protoGenerateArgs reads the //go:generate protoc line of generate.go and
// redirects its outputs to dir, so the test checks the command we really use.
func protoGenerateArgs(t *testing.T, src, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, "generate.go"))
	if err != nil {
		t.Fatalf("read generate.go: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "//go:generate protoc ")
		if !ok {
			continue
		}
		var args []string
		outs := 0
		for _, a := range strings.Fields(rest) {
			if flag, val, ok := strings.Cut(a, "="); ok && strings.HasSuffix(flag, "_out") {
				if val != "." {
					t.Fatalf("generate.go: %s writes outside its directory; the test expects %s=.", a, flag)
				}
				a = flag + "=" + dir
				outs++
			}
			args = append(args, a)
		}
		if outs == 0 {
			t.Fatalf("generate.go: protoc line has no --*_out flag: %q", rest)
		}
		return args
	}
	t.Fatalf("generate.go has no //go:generate protoc line")
	return nil
}

func protoFindProtoc(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("protoc")
	if err == nil {
		if v, err := exec.Command(p, "--version").Output(); err == nil {
			t.Logf("using %s (%s)", p, strings.TrimSpace(string(v)))
		}
		return p
	}
	if protoInCI() {
		t.Fatalf("protoc not found on PATH: .ci/run must install it (apt-get install -y protobuf-compiler)")
	}
	t.Fatalf("protoc not found on PATH: install it with `apt-get install -y protobuf-compiler` " +
		"(Debian bookworm's protoc 3.21.12 generated the committed files)")
	return ""
}

// protoFindGenerator returns a binary of g at the pinned version. Outside CI
// it installs one into a temp GOBIN when none is found, so a developer
// machine needs only protoc; CI must provide them itself.
func protoFindGenerator(t *testing.T, g protoGenerator) string {
	t.Helper()
	var seen []string
	for _, p := range protoGeneratorCandidates(g.name) {
		v, err := exec.Command(p, "--version").Output()
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(v)) == g.banner {
			return p
		}
		seen = append(seen, fmt.Sprintf("%s is %q", p, strings.TrimSpace(string(v))))
	}
	if len(seen) == 0 {
		seen = append(seen, "none on PATH or in GOBIN, GOPATH/bin")
	}
	if protoInCI() {
		t.Fatalf("%s %s not found (%s): .ci/run must install it with `go install %s@%s` and put $(go env GOPATH)/bin on PATH",
			g.name, g.version, strings.Join(seen, "; "), g.pkg, g.version)
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", g.pkg+"@"+g.version)
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s not found (%s) and `go install %s@%s` failed: %v\n%s", g.name, g.version, strings.Join(seen, "; "), g.pkg, g.version, err, b)
	}
	t.Logf("installed %s@%s into %s", g.pkg, g.version, gobin)
	return filepath.Join(gobin, g.name)
}

// protoGeneratorCandidates lists where a generator may be: PATH first, then
// the GOBIN/GOPATH/bin that `go install` fills but that is often not on PATH.
func protoGeneratorCandidates(name string) []string {
	var out []string
	if p, err := exec.LookPath(name); err == nil {
		out = append(out, p)
	}
	if b, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			out = append(out, filepath.Join(strings.TrimSpace(lines[0]), name))
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				out = append(out, filepath.Join(gp, "bin", name))
			}
		}
	}
	return slices.Compact(out)
}

// protoGlob lists the generated Go files (by base name) of dir.
func protoGlob(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(m))
	for _, p := range m {
		names = append(names, filepath.Base(p))
	}
	slices.Sort(names)
	return names
}

func protoRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return protocVersionLine.ReplaceAll(b, []byte("// ${1}protoc <version>"))
}

// protoFirstDiff describes the first differing line with some context, or
// returns "" when the files are equal.
func protoFirstDiff(committed, generated []byte) string {
	if bytes.Equal(committed, generated) {
		return ""
	}
	a := strings.Split(string(committed), "\n")
	b := strings.Split(string(generated), "\n")
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	excerpt := func(lines []string) string {
		lo, hi := max(0, i-2), min(len(lines), i+3)
		return strings.Join(lines[lo:hi], "\n")
	}
	return fmt.Sprintf("first difference at line %d\n--- committed:\n%s\n--- regenerated:\n%s",
		i+1, excerpt(a), excerpt(b))
}

// TestProtoFirstDiff proves the comparison reports a changed line and
// tolerates only a different protoc version in the header.
func TestProtoFirstDiff(t *testing.T) {
	t.Parallel()
	header := func(protoc, body string) []byte {
		return protocVersionLine.ReplaceAll([]byte("// versions:\n// \tprotoc-gen-go v1.36.12\n// \tprotoc        "+
			protoc+"\n// - protoc             "+protoc+"\npackage p\n"+body), []byte("// ${1}protoc <version>"))
	}
	tests := []struct {
		name      string
		committed []byte
		generated []byte
		wantDiff  bool
	}{
		{"equal", header("v3.21.12", "var x int\n"), header("v3.21.12", "var x int\n"), false},
		{"only protoc version differs", header("v3.21.12", "var x int\n"), header("v5.29.3", "var x int\n"), false},
		{"body differs", header("v3.21.12", "var x int\n"), header("v3.21.12", "var x int64\n"), true},
		{"plugin version differs", []byte("// \tprotoc-gen-go v1.36.12\n"), []byte("// \tprotoc-gen-go v1.36.11\n"), true},
		{"line added", []byte("a\n"), []byte("a\nb\n"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := protoFirstDiff(tc.committed, tc.generated)
			if (d != "") != tc.wantDiff {
				t.Fatalf("diff = %q, want diff: %v", d, tc.wantDiff)
			}
		})
	}
}
