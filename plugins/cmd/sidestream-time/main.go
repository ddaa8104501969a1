// Command sidestream-time serves the built-in "time" emitter plugin as a
// standalone binary, for hosts that load it from a plugin directory
// instead of the sidecar's own `sidestream internal-plugin time`. It is
// started by the host over the plugin protocol, not by hand.
package main

import (
	timeplugin "github.com/sidestream/sidestream/plugins/builtin/time"
	"github.com/sidestream/sidestream/plugins/sdk"
)

func main() { sdk.Serve(timeplugin.New()) }
