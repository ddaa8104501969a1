package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// `sidestream plugins verify` starts each plugin of a directory, reports
// the good ones with their version and fails, naming them, on the bad.
func TestPluginsVerifyCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	counter := filepath.Join(dir, "example-counter")
	if out, err := exec.Command("go", "build", "-o", counter, "../plugins/cmd/example-counter").CombinedOutput(); err != nil {
		t.Fatalf("build example-counter: %v\n%s", err, out)
	}
	write := func(entries ...map[string]string) {
		raw, _ := json.Marshal(map[string]any{"plugins": entries})
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := map[string]string{"name": "counter", "path": "example-counter", "sha256": sha256File(t, counter)}

	write(good)
	out, err := exec.Command(binary, "plugins", "verify", "--plugin-dir", dir).CombinedOutput()
	if err != nil || !regexp.MustCompile(`counter\s+ok\s+\S+`).Match(out) {
		t.Fatalf("verify of a good directory: %v\n%s", err, out)
	}

	write(good, map[string]string{"name": "tampered", "path": "example-counter", "sha256": strings.Repeat("0", 64)})
	out, err = exec.Command(binary, "plugins", "verify", "--plugin-dir", dir).CombinedOutput()
	if err == nil {
		t.Fatalf("verify passed with a checksum mismatch:\n%s", out)
	}
	if !regexp.MustCompile(`tampered\s+FAIL.*checksum`).Match(out) || !strings.Contains(string(out), "tampered") {
		t.Fatalf("verify output does not name the mismatch:\n%s", out)
	}

	out, err = exec.Command(binary, "plugins", "verify").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--plugin-dir") {
		t.Fatalf("verify without a directory: %v\n%s", err, out)
	}
}
