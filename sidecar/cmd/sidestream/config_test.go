package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sidestream/sidestream/sidecar/internal/config"
)

// run executes the CLI in-process and returns stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func find(t *testing.T, path ...string) *cobra.Command {
	t.Helper()
	cmd, _, err := newRootCommand().Find(path)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// Every flag of serve and config print is a config key's flag (or
// --config): no flag is declared outside the keys.
func TestServeFlagsAreKeys(t *testing.T) {
	t.Parallel()
	byFlag := map[string]string{}
	for _, k := range config.Keys {
		if k.Flag != "" {
			byFlag[k.Flag] = k.Name
		}
	}
	for _, path := range [][]string{{"serve"}, {"config", "print"}} {
		seen := 0
		find(t, path...).Flags().VisitAll(func(fl *pflag.Flag) {
			if fl.Name == config.FileFlag || fl.Name == "help" {
				return
			}
			if _, ok := byFlag[fl.Name]; !ok {
				t.Errorf("%s --%s is not the flag of a config key", strings.Join(path, " "), fl.Name)
			}
			seen++
		})
		if seen != len(byFlag) {
			t.Errorf("%s has %d key flags, the keys declare %d", strings.Join(path, " "), seen, len(byFlag))
		}
	}
}

// config print shows the values in force, config schema the schema.
func TestConfigPrintAndSchema(t *testing.T) {
	// The process environment must not leak in: unset every variable a
	// key reads (t.Setenv restores them afterwards).
	for _, k := range config.Keys {
		for _, name := range []string{k.Env, k.StdEnv} {
			if name != "" {
				t.Setenv(name, "")
				os.Unsetenv(name)
			}
		}
	}
	t.Setenv("SIDESTREAM_CONFIG", "")
	out, err := run(t, "config", "print", "--queue-min-claim-ttl", "2s")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"min_message_ttl: 1m0s", "min_claim_ttl: 2s", "driver: bolt", "replicas: 0 # automatic"} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if _, err := run(t, "config", "print", "--queue-min-claim-ttl", "0s"); err == nil {
		t.Error("a zero claim ttl minimum is accepted (the queue service would enforce 60s)")
	}
	out, err = run(t, "config", "schema")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(out), &schema); err != nil || schema["properties"] == nil {
		t.Fatalf("config schema is not a JSON Schema: %v\n%s", err, out)
	}
}
