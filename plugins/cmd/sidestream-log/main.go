// Command sidestream-log serves the built-in "log" emitter plugin as a
// standalone binary, for hosts that load it from a plugin directory
// instead of the sidecar's own `sidestream internal-plugin log`. It is
// started by the host over the plugin protocol, not by hand.
package main

import (
	logplugin "github.com/sidestream/sidestream/plugins/builtin/log"
	"github.com/sidestream/sidestream/plugins/sdk"
)

func main() { sdk.Serve(logplugin.New()) }
