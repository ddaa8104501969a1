package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// chromiumInstall is how CI (and a developer) gets the browser the livedoc
// tests drive.
const chromiumInstall = "apt-get install -y chromium"

// chromiumCandidates are the executables tried, in order: Debian's path
// first, then whatever PATH offers.
var chromiumCandidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}

// requireChromium returns the Chromium to drive. Without one it skips the
// test with one line naming the install command, unless CI=true: CI must
// run the browser tests, so there a missing browser fails.
func requireChromium(t testing.TB) string {
	t.Helper()
	return findChromium(t, os.Getenv("CI") == "true", exec.LookPath)
}

func findChromium(t testing.TB, ci bool, look func(string) (string, error)) string {
	t.Helper()
	for _, c := range chromiumCandidates {
		if p, err := look(c); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("BROWSER TEST NOT RUN: no Chromium (%v); install it with `%s`", chromiumCandidates, chromiumInstall)
	if ci {
		t.Fatal(msg + " (CI=true: .ci/run must install it)")
		return ""
	}
	t.Skip(msg)
	return ""
}

// recordTB records how findChromium ended a test instead of ending it.
type recordTB struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
}
func (r *recordTB) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
}

func TestFindChromium(t *testing.T) {
	t.Parallel()
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	onPath := func(name string) (string, error) {
		if name == "chromium" {
			return "/opt/bin/chromium", nil
		}
		return "", exec.ErrNotFound
	}
	tests := []struct {
		name     string
		ci       bool
		look     func(string) (string, error)
		wantPath string
		wantFail bool
		wantSkip bool
	}{
		{"found, not CI", false, onPath, "/opt/bin/chromium", false, false},
		{"found, CI", true, onPath, "/opt/bin/chromium", false, false},
		{"missing, not CI skips", false, missing, "", false, true},
		{"missing, CI fails", true, missing, "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recordTB{TB: t}
			got := findChromium(r, tc.ci, tc.look)
			if got != tc.wantPath || r.failed != tc.wantFail || r.skipped != tc.wantSkip {
				t.Fatalf("path %q failed %v skipped %v, want %q %v %v", got, r.failed, r.skipped, tc.wantPath, tc.wantFail, tc.wantSkip)
			}
			if (r.failed || r.skipped) && !strings.Contains(r.msg, chromiumInstall) {
				t.Fatalf("message %q does not name %q", r.msg, chromiumInstall)
			}
		})
	}
}
