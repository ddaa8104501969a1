package e2e

// What serve and the API promise a first-time user, on the real binary:
// a bad --listen is refused before anything starts, the data dir is
// logged absolute, PUT /log takes the guest and a chosen id and says
// where the emitter is, and config errors read as sentences.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesBadListen: an address in use, or one that cannot be
// bound, ends serve with a non-zero exit and a message naming --listen,
// before the store opens or any plugin starts.
func TestServeRefusesBadListen(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{busy.Addr().String(), "127.0.0.1:99999"} {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, binary, "serve", "--listen", addr, "--data-dir", dir).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("serve --listen %s: %v, want a non-zero exit\n%s", addr, err, out)
		}
		if !strings.Contains(string(out), "--listen") || !strings.Contains(string(out), addr) {
			t.Errorf("serve --listen %s: the message does not name --listen and the address:\n%s", addr, out)
		}
		if strings.Contains(string(out), "store opened") || strings.Contains(string(out), "plugin running") {
			t.Errorf("serve --listen %s opened the store or started plugins first:\n%s", addr, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "sidestream.db")); err == nil {
			t.Errorf("serve --listen %s created the store", addr)
		}
	}
}

// TestServeLogsAbsoluteDataDir: started with the default data dir from
// some working directory, serve logs where its data is as an absolute path.
func TestServeLogsAbsoluteDataDir(t *testing.T) {
	t.Parallel()
	wd := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir, cmd.Env = wd, cliEnv("SIDESTREAM_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec struct {
			Msg     string `json:"msg"`
			DataDir string `json:"data_dir"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "sidestream serving" {
			continue
		}
		if want := filepath.Join(wd, "data"); rec.DataDir != want {
			t.Fatalf("data_dir logged as %q, want %q", rec.DataDir, want)
		}
		return
	}
	t.Fatal("serve ended without logging that it serves")
}

// TestPutLogGuestAndChosenIDs: PUT /log takes the guest in the query or
// the body and a client-chosen id, answers with a Location, and refuses a
// query that contradicts the body; POST /api/v1/emitters takes a chosen
// id too; an id that is not a valid name is a 400 naming the field.
func TestPutLogGuestAndChosenIDs(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir())
	a := send(t, "PUT", s.URL("/log?guest=vm-17"), "", nil)
	var created struct{ ID string }
	a.decode(t, &created)
	if a.status != 201 || created.ID == "" || a.header.Get("Location") != "/log/"+created.ID {
		t.Fatalf("PUT /log?guest=vm-17: %d %s, Location %q", a.status, a.body, a.header.Get("Location"))
	}
	var em struct {
		Labels map[string]string `json:"labels"`
		Config struct {
			Guest string `json:"guest"`
		} `json:"config"`
	}
	do(t, "GET", s.URL("/api/v1/emitters/"+created.ID), "", &em)
	if em.Labels["guest"] != "vm-17" || em.Config.Guest != "vm-17" {
		t.Fatalf("emitter of PUT /log?guest=vm-17: %+v", em)
	}

	a = send(t, "PUT", s.URL("/log"), `{"id":"vm-17.console","guest":"vm-17","rate":5}`, nil)
	if a.status != 201 || !strings.Contains(string(a.body), `"vm-17.console"`) || a.header.Get("Location") != "/log/vm-17.console" {
		t.Fatalf("PUT /log with a chosen id: %d %s, Location %q", a.status, a.body, a.header.Get("Location"))
	}
	if code := do(t, "GET", s.URL("/log/vm-17.console?limit=1"), "", nil); code != 200 {
		t.Fatalf("GET the Location: %d", code)
	}
	a = send(t, "POST", s.URL("/api/v1/emitters"), `{"id":"ticker_2","kind":"time","config":{"interval":"1s"}}`, nil)
	if a.status != 201 || a.header.Get("Location") != "/api/v1/emitters/ticker_2" {
		t.Fatalf("POST /api/v1/emitters with a chosen id: %d %s", a.status, a.body)
	}

	for _, bad := range []struct{ method, path, body, code, field string }{
		{"PUT", "/log?guest=vm-18", `{"guest":"vm-17"}`, "invalid_query", "guest"},
		{"PUT", "/log", `{"id":"-bad id"}`, "invalid", "id"},
		{"PUT", "/log?id=vm-17.console", "", "exists", "vm-17.console"},
	} {
		a := send(t, bad.method, s.URL(bad.path), bad.body, nil)
		if a.status/100 != 4 || a.errorCode() != bad.code || !strings.Contains(string(a.body), bad.field) {
			t.Errorf("%s %s %s: %d %s, want a 4xx %s naming %q", bad.method, bad.path, bad.body, a.status, a.body, bad.code, bad.field)
		}
	}
}

// TestConfigErrorsReadAsSentences: an emitter config the kind's schema
// refuses is answered with what the field must be.
func TestConfigErrorsReadAsSentences(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, t.TempDir())
	for _, tc := range []struct{ body, want string }{
		{`{"kind":"magic","config":{"rate":0}}`, "invalid config: rate must be > 0"},
		{`{"kind":"log","config":{"source":"synthetic","rate":200000}}`, "invalid config: rate must be at most 100000"},
	} {
		a := send(t, "POST", s.URL("/api/v1/emitters"), tc.body, nil)
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		a.decode(t, &e)
		if a.status != 400 || e.Error.Message != tc.want {
			t.Errorf("%s: %d %q, want 400 %q", tc.body, a.status, e.Error.Message, tc.want)
		}
	}
}
