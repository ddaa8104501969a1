package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidestream/sidestream/sidecar/api"
)

// TestPluginEnvironmentHasNoSecrets: a sidecar started with its JWT
// secret and an OTLP header in the environment runs plugins whose
// environment (/proc/PID/environ) holds neither, nor anything else of
// the sidecar's but what a built-in is given (SIDESTREAM_LOG_ROOTS) and
// go-plugin's handshake.
func TestPluginEnvironmentHasNoSecrets(t *testing.T) {
	t.Parallel()
	secret := "plugin-env-secret-of-at-least-32-bytes!"
	sc := startSidecarEnv(t, t.TempDir(), []string{
		"SIDESTREAM_AUTH_JWT_SECRET=" + secret,
		"E2E_UNRELATED_HOST_VAR=leak",
	})
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"tenant": "t", "scope": "*",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	var running []api.Plugin
	eventually(t, "the built-in plugins running", 60*time.Second, func() bool {
		var page api.Items[api.Plugin]
		a := send(t, "GET", sc.URL("/api/v1/plugins"), "", bearer(tok))
		if a.status != http.StatusOK {
			return false
		}
		a.decode(t, &page)
		running = running[:0]
		for _, p := range page.Items {
			if p.State == "running" && p.PID > 0 {
				running = append(running, p)
			}
		}
		return len(running) >= 3 // magic, time, fibonacci
	})
	for _, p := range running {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if err != nil {
			t.Fatalf("plugin %s: %v", p.Name, err)
		}
		for _, v := range bytes.Split(raw, []byte{0}) {
			name, _, _ := bytes.Cut(v, []byte("="))
			if len(name) == 0 {
				continue
			}
			switch {
			case bytes.Contains(v, []byte(secret)):
				t.Errorf("plugin %s (pid %d) has the JWT secret in its environment (%s)", p.Name, p.PID, name)
			case bytes.HasPrefix(name, []byte("SIDESTREAM_")) && string(name) != "SIDESTREAM_LOG_ROOTS" &&
				string(name) != "SIDESTREAM_PLUGIN": // the handshake's magic cookie
				t.Errorf("plugin %s (pid %d) inherited %s", p.Name, p.PID, name)
			case string(name) == "E2E_UNRELATED_HOST_VAR" || string(name) == "HOME" || string(name) == "PATH":
				t.Errorf("plugin %s (pid %d) inherited the sidecar's %s", p.Name, p.PID, name)
			}
		}
	}
}
