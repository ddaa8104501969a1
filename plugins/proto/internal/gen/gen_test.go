package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// protoDir is the package whose generated code is checked, relative to this
// test's directory.
const protoDir = "../.."

// TestGeneratedCodeIsFresh regenerates plugins/proto/*.pb.go in memory and
// fails on any byte of difference with the committed files, so a .proto
// edit (or a generator bump in go.mod) without regeneration cannot land.
func TestGeneratedCodeIsFresh(t *testing.T) {
	t.Parallel()
	generated, err := generate(t.Context(), protoDir)
	if err != nil {
		t.Fatal(err)
	}
	committed := committedFiles(t, protoDir)
	if got, want := slices.Sorted(maps.Keys(generated)), slices.Sorted(maps.Keys(committed)); !slices.Equal(got, want) {
		t.Fatalf("generated files %v, committed files %v: run `go generate ./plugins/proto/...` and commit", got, want)
	}
	for name, want := range generated {
		if d := firstDiff(committed[name], want); d != "" {
			t.Errorf("plugins/proto/%s is stale: run `go generate ./plugins/proto/...` and commit.\n%s", name, d)
		}
	}
}

// TestEditedProtoIsDetected proves the check sees a contract change: a copy
// of the contract with one more field must generate different code.
func TestEditedProtoIsDetected(t *testing.T) {
	t.Parallel()
	dir := copyProto(t, func(src string) string {
		edited := strings.Replace(src, "message StopRequest {", "message StopRequest {\n  string added_by_test = 99;", 1)
		if edited == src {
			t.Fatal("emitter.proto has no StopRequest message to edit")
		}
		return edited
	})
	generated, err := generate(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	committed := committedFiles(t, protoDir)
	if d := firstDiff(committed["emitter.pb.go"], generated["emitter.pb.go"]); !strings.Contains(d, "AddedByTest") {
		t.Fatalf("edited contract not reported as a difference; diff: %q", d)
	}
}

// TestRunWritesFiles checks what `go generate` does: the files land next to
// the .proto and compare equal to what generate returns.
func TestRunWritesFiles(t *testing.T) {
	t.Parallel()
	dir := copyProto(t, func(src string) string { return src })
	if err := run(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	want := committedFiles(t, protoDir)
	got := committedFiles(t, dir)
	for name := range want {
		if d := firstDiff(want[name], got[name]); d != "" {
			t.Errorf("%s written by run differs from the committed file:\n%s", name, d)
		}
	}
}

// copyProto copies the contract, changed by edit, into a new temp dir.
func copyProto(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(protoDir, "emitter.proto"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "emitter.proto"), []byte(edit(string(src))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// committedFiles reads the *.pb.go files of dir by base name.
func committedFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// firstDiff describes the first differing line with some context, or
// returns "" when the files are equal.
func firstDiff(committed, generated []byte) string {
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

func TestFirstDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		committed, generated string
		wantDiff             bool
	}{
		{"equal", "a\nb\n", "a\nb\n", false},
		{"header version differs", "// \tprotoc-gen-go v1.36.12\n", "// \tprotoc-gen-go v1.36.11\n", true},
		{"line added", "a\n", "a\nb\n", true},
		{"trailing newline", "a", "a\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if d := firstDiff([]byte(tc.committed), []byte(tc.generated)); (d != "") != tc.wantDiff {
				t.Fatalf("diff = %q, want diff: %v", d, tc.wantDiff)
			}
		})
	}
}
