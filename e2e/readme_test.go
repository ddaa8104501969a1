package e2e

// The README's commands work as written on Linux: the "Try it" block is
// replayed against the real binary (its server address and the emitter
// id it prints substituted, streams cut after 5 s), its token
// file example is one serve accepts, and every config key of its table is
// in deploy/sidestream.example.yaml.

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the body of the first fenced block of lang after
// the line that starts with marker.
func readmeBlock(t *testing.T, marker, lang string) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), marker)
	if !ok {
		t.Fatalf("README has no %q", marker)
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README has no %s block after %q", lang, marker)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// shellLines joins continued lines and drops comments and blanks.
func shellLines(block string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if i := strings.Index(line, "  # "); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// TestReadmeTryIt replays the README's first commands. The server is
// this test's (on a random port), so `serve &` is skipped; the page
// opener must be one Linux has; the tail that follows forever is cut.
func TestReadmeTryIt(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir())
	var id string
	for _, line := range shellLines(readmeBlock(t, "## Try it", "sh")) {
		first := strings.Fields(line)[0]
		switch {
		case first == "open":
			t.Fatalf("README runs %q: there is no open on Linux (xdg-open)", line)
		case first == "xdg-open" || strings.HasSuffix(line, " serve &"):
			continue // a browser; the server is running already
		}
		cmdLine := strings.ReplaceAll(line, "localhost:9000", s.addr)
		cmdLine = strings.ReplaceAll(cmdLine, "go run ./sidecar/cmd/sidestream", binary)
		if strings.Contains(cmdLine, "em-…") {
			if id == "" {
				t.Fatalf("%q needs the id of an earlier command, which printed none", line)
			}
			cmdLine = strings.ReplaceAll(cmdLine, "em-…", id)
		}
		stream := strings.Contains(cmdLine, "curl -N") || strings.Contains(cmdLine, " tail ")
		out := runShell(t, cmdLine, stream, "SIDESTREAM_SERVER=http://"+s.addr)
		if m := regexp.MustCompile(`"id":"(em-[0-9a-f]+)"`).FindStringSubmatch(out); m != nil && id == "" {
			id = m[1]
		}
		if strings.Contains(line, "queue consume") && strings.TrimSpace(out) != `{"hi":1}` {
			t.Errorf("%s printed %q, want the body {\"hi\":1}", line, out)
		}
	}
	if id == "" {
		t.Fatal("no README command created a log emitter")
	}
}

// runShell runs line with bash; a stream is cut after 5 s and must have
// printed something by then.
func runShell(t *testing.T, line string, stream bool, env ...string) string {
	t.Helper()
	limit := 60 * time.Second
	if stream {
		limit = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec "+line) // exec: a cut kills the command itself
	cmd.Env = cliEnv(env...)
	// WaitDelay bounds only the wait for the output pipes once the
	// process has exited or been killed; nothing here leaves a child
	// holding them, so it is long: on a loaded two-core runner the
	// copying goroutine took over 5 s to see EOF from a command that
	// had exited 0 with all of its output written.
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case stream && len(out) > 0 && ctx.Err() != nil:
		return string(out) // cut while it streamed
	case err != nil && errors.As(err, &exit):
		t.Fatalf("%s: %v\n%s\nstderr:\n%s", line, err, out, exit.Stderr)
	case err != nil || len(out) == 0:
		t.Fatalf("%s: %v, printed %q", line, err, out)
	}
	if status := regexp.MustCompile(`^HTTP/1.1 (\d+)`).FindSubmatch(out); status != nil && status[1][0] != '2' {
		t.Fatalf("%s: %s", line, out)
	}
	return string(out)
}

// TestReadmeTokenFile: the token file shown in the README is accepted by
// serve, and its tokens work (the read-only one may not post).
func TestReadmeTokenFile(t *testing.T) {
	t.Parallel()
	block := readmeBlock(t, "The token file", "yaml")
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startSidecar(t, t.TempDir(), "--auth-token-file", path)
	toks := regexp.MustCompile(`token: (\S+)`).FindAllStringSubmatch(block, -1)
	if len(toks) != 2 {
		t.Fatalf("README token file example has %d tokens, want 2:\n%s", len(toks), block)
	}
	h := map[string]string{"Client-ID": qClient}
	post := `{"messages":[{"ttl":300,"body":1}]}`
	if a := send(t, "POST", s.URL("/v2/queues/q/messages"), post, bearer(toks[0][1]).with(h)); a.status != 201 {
		t.Errorf("first README token: %d %s", a.status, a.body)
	}
	if a := send(t, "GET", s.URL("/v2/queues/q/messages?echo=true"), "", bearer(toks[1][1]).with(h)); a.status/100 != 2 {
		t.Errorf("read-only README token reading: %d %s", a.status, a.body)
	}
	if a := send(t, "POST", s.URL("/v2/queues/q/messages"), post, bearer(toks[1][1]).with(h)); a.status != 403 {
		t.Errorf("read-only README token posting: %d %s, want 403", a.status, a.body)
	}
	if a := send(t, "GET", s.URL("/v2/queues"), "", h); a.status != 401 {
		t.Errorf("no token: %d, want 401", a.status)
	}
}

// TestReadmeKeysInExample: every key of the README's config table is in
// deploy/sidestream.example.yaml (set or commented out).
func TestReadmeKeysInExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile("(?m)^\\| `([a-z_]+(?:\\.[a-z_]+)?)` \\| `SIDESTREAM_").FindAllStringSubmatch(string(readme), -1)
	if len(keys) < 10 {
		t.Fatalf("found %d keys in the README table", len(keys))
	}
	f, err := os.Open("../deploy/sidestream.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	have := map[string]bool{}
	section := ""
	sc := bufio.NewScanner(f)
	keyRE := regexp.MustCompile(`^( *)(?:# )?([a-z_]+):`)
	for sc.Scan() {
		m := keyRE.FindStringSubmatch(sc.Text())
		switch {
		case m == nil:
		case m[1] == "":
			section = m[2]
			have[m[2]] = true
		case len(m[1]) == 2:
			have[section+"."+m[2]] = true
		}
	}
	for _, k := range keys {
		if !have[k[1]] {
			t.Errorf("README promises key %s; deploy/sidestream.example.yaml lacks it", k[1])
		}
	}
}
