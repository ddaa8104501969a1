// Command example-counter is a complete external sidestream plugin, written
// to be copied: it counts up at a configured interval, declares a config
// schema, checkpoints its count so a restart resumes where it stopped, and
// accepts one command, reset. See README.md for building and installing it.
//
// A plugin is an ordinary Go program: implement sdk.Plugin (and
// sdk.Commander for commands) and hand it to sdk.Serve. The host starts
// the binary, talks to it over the plugin protocol, and runs many emitter
// instances in this one process, so the plugin must keep per-instance
// state keyed by instance id, never in globals.
package main

import "github.com/sidestream/sidestream/plugins/sdk"

func main() {
	// sdk.Logger writes JSON lines to stderr; the host forwards them into
	// its own log under this plugin's name. Never write to stdout: the
	// plugin protocol owns it.
	sdk.Serve(NewCounter(sdk.Logger()))
}
