package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A plugin of another protocol version is refused at the handshake, and
// the refusal names both versions.
func TestProbeRefusesOtherProtocolVersion(t *testing.T) {
	t.Parallel()
	_, err := Probe(ctxT(t), builtin("future", "future"), 20*time.Second)
	if !errors.Is(err, ErrProtocolVersion) {
		t.Fatalf("probe of a plugin of protocol version %d: %v, want ErrProtocolVersion", 2, err)
	}
	for _, want := range []string{"plugin speaks protocol version 2", "this sidestream speaks 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not say %q", err, want)
		}
	}
	kind, err := Probe(ctxT(t), builtin("renamed", "counter"), 20*time.Second)
	if err != nil || kind.Name != "counter" || kind.Version != "1.2.3" {
		t.Fatalf("probe of a good plugin: %+v %v, want the name it reports (counter)", kind, err)
	}
}

// Add copies, probes and pins a plugin under the name it reports; bad
// binaries and name clashes leave the directory as it was; Remove undoes
// Add.
func TestAddAndRemove(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "plugins")
	script := filepath.Join(t.TempDir(), "not-a-plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(t.TempDir(), "sidestream-hello")
	if out, err := exec.Command("go", "build", "-o", hello, "../../../plugins/examples/hello").CombinedOutput(); err != nil {
		t.Fatalf("build the hello plugin: %v\n%s", err, out)
	}
	add := func(bin string, reserved ...string) (ManifestEntry, error) {
		e, _, err := Add(ctxT(t), AddRequest{Dir: dir, Binary: bin, Reserved: reserved, Timeout: 20 * time.Second})
		return e, err
	}

	if _, err := add(script); !errors.Is(err, ErrNotPlugin) {
		t.Fatalf("add of a script that exits: %v, want ErrNotPlugin", err)
	}
	if _, err := add(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("add of a missing file: %v", err)
	}
	if _, err := add(hello, "hello"); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("add under a built-in name: %v, want ErrNameTaken", err)
	}
	assertDir(t, dir) // nothing left behind
	e, err := add(hello)
	if err != nil || e.Name != "hello" || e.Path != "hello" {
		t.Fatalf("add: %+v %v", e, err)
	}
	srcs, err := LoadManifest(dir)
	if err != nil || len(srcs) != 1 || VerifyChecksum(srcs[0]) != nil {
		t.Fatalf("manifest after add: %+v %v", srcs, err)
	}
	if _, err := add(hello); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("second add: %v, want ErrNameTaken", err)
	}
	assertDir(t, dir, "hello", ManifestFile)
	if _, err := Remove(dir, "nope"); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "hello") {
		t.Fatalf("remove of an unknown name: %v", err)
	}
	if _, err := Remove(dir, "hello"); err != nil {
		t.Fatal(err)
	}
	assertDir(t, dir, ManifestFile)
	if srcs, err := LoadManifest(dir); err != nil || len(srcs) != 0 {
		t.Fatalf("manifest after remove: %+v %v", srcs, err)
	}
}

func assertDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
}
