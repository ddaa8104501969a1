package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// clientCommands are every subcommand that talks to a server.
var clientCommands = [][]string{{"plugins", "list"}, {"tail"}, {"queue", "produce"}, {"queue", "consume"}, {"bench"}}

// Every client subcommand has the same --server, --token and --ca, and no
// other flag naming a server or a token.
func TestClientFlagsAreTheSameEverywhere(t *testing.T) {
	t.Parallel()
	var want map[string]string
	for _, path := range clientCommands {
		cmd := find(t, path...)
		got := map[string]string{}
		cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			switch {
			case fl.Name == "server" || fl.Name == "token" || fl.Name == "ca":
				got[fl.Name] = fl.Usage + " default=" + fl.DefValue
			case strings.Contains(fl.Name, "url"), strings.Contains(fl.Name, "addr"), strings.Contains(fl.Name, "target"),
				strings.Contains(fl.Name, "token"):
				t.Errorf("%s has --%s besides --server/--token", strings.Join(path, " "), fl.Name)
			}
		})
		if len(got) != 3 {
			t.Errorf("%s lacks --server, --token or --ca: %v", strings.Join(path, " "), got)
		}
		if want == nil {
			want = got
		} else if got["server"] != want["server"] || got["token"] != want["token"] || got["ca"] != want["ca"] {
			t.Errorf("%s declares its client flags differently: %v, want %v", strings.Join(path, " "), got, want)
		}
	}
}

// resolveServer parses args on a command with the client flags and
// returns the resolved server and token.
func resolveServer(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := &cobra.Command{Use: "client"}
	cf := addClientFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	cf.resolve()
	return cf.server, cf.token
}

// Flags win over SIDESTREAM_SERVER/SIDESTREAM_TOKEN, which win over the
// default; the old --url and --target still name the server.
func TestClientFlagsResolve(t *testing.T) {
	t.Setenv("SIDESTREAM_SERVER", "")
	t.Setenv("SIDESTREAM_TOKEN", "")
	if s, tok := resolveServer(t); s != "http://127.0.0.1:9000" || tok != "" {
		t.Errorf("defaults: %q %q", s, tok)
	}
	t.Setenv("SIDESTREAM_SERVER", "http://env:1")
	t.Setenv("SIDESTREAM_TOKEN", "env-token")
	if s, tok := resolveServer(t); s != "http://env:1" || tok != "env-token" {
		t.Errorf("environment: %q %q", s, tok)
	}
	if s, tok := resolveServer(t, "--server", "http://flag:2", "--token", "flag-token"); s != "http://flag:2" || tok != "flag-token" {
		t.Errorf("flags: %q %q", s, tok)
	}
	for _, old := range []string{"--url", "--target"} {
		if s, _ := resolveServer(t, old, "http://old:3"); s != "http://old:3" {
			t.Errorf("%s: server %q", old, s)
		}
	}
}
