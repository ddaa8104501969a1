package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lowFDLimit runs the binary with both open-file limits at 256, so Go
// cannot raise the soft one at start.
var lowFDLimit = []string{"sh", "-c", `ulimit -n 256 && exec "$@"`, "sh"}

// Idle connections beyond what the process's file descriptors allow do
// not end the server. With the default limit (derived from the open-file
// limit) the extra ones are answered 503 with Retry-After; with a limit
// set above the descriptors, accept fails with EMFILE and backs off.
// Either way the refusals are counted in /metrics and the server answers
// again once the connections close, without ever having exited.
func TestFDExhaustionKeepsServing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		extra  []string
		reason string // the refusals counted
		full   int    // the answer to a request while the connections are held (0: none expected)
	}{
		{"default limit refuses", nil, "max_connections", http.StatusServiceUnavailable},
		{"limit above the descriptors backs off", []string{"--max-connections", "100000"}, "accept_failed", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := startSidecarVia(t, lowFDLimit, t.TempDir(), tt.extra...)
			if lim := openFileLimit(t, sc.cmd.Process.Pid); lim != 256 {
				t.Fatalf("the sidecar runs with an open-file limit of %d, want 256", lim)
			}
			pollReadyz(t, sc, http.StatusOK, 60*time.Second)

			conns := make([]net.Conn, 0, 300)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range 300 {
				c, err := net.DialTimeout("tcp", sc.addr, 10*time.Second)
				if err != nil {
					t.Fatalf("dial %d: %v", len(conns), err)
				}
				conns = append(conns, c)
			}
			if tt.full != 0 {
				// A refusal beyond the few answered at once is a bare
				// close; those answered free their slot within a second.
				var a answer
				eventually(t, "a 503 while full", 30*time.Second, func() bool {
					a = rawGet(t, sc.addr, "/healthz")
					return a.status != 0
				})
				if a.status != tt.full || a.header.Get("Retry-After") == "" || a.errorCode() != "too_many_connections" {
					t.Fatalf("request while full: %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.body)
				}
			}
			for _, c := range conns {
				c.Close()
			}
			conns = conns[:0]

			eventually(t, "the server answers again", 60*time.Second, func() bool {
				return rawGet(t, sc.addr, "/healthz").status == http.StatusOK
			})
			select {
			case <-sc.done:
				t.Fatalf("the sidecar exited; logs:\n%s", sc.Logs())
			default:
			}
			a := send(t, http.MethodGet, sc.URL("/metrics"), "", nil)
			if n := refusedCount(string(a.body), tt.reason); n < 1 {
				t.Fatalf("/metrics counts %v refusals for %s, want some", n, tt.reason)
			}
			if code := sc.Stop(t); code != 0 {
				t.Fatalf("exit code %d after SIGTERM, want 0", code)
			}
		})
	}
}

// rawGet sends GET path on a new connection and reads the answer; a
// connection refused, reset or not answered in time is status 0.
func rawGet(t *testing.T, addr, path string) answer {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + path)
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return answer{resp.StatusCode, resp.Header, []byte(b.String())}
}

// refusedCount reads sidestream_http_connections_refused_total for
// reason from a Prometheus exposition.
func refusedCount(exposition, reason string) float64 {
	re := regexp.MustCompile(`(?m)^sidestream_http_connections_refused_total\{[^}]*sidestream_reason="` +
		regexp.QuoteMeta(reason) + `"[^}]*\} (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// openFileLimit reads the soft open-file limit of process pid.
func openFileLimit(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(strings.TrimPrefix(l, "Max open files")); strings.HasPrefix(l, "Max open files") && len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	t.Fatalf("no open-file limit in /proc/%d/limits", pid)
	return 0
}
