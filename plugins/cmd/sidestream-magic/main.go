// Command sidestream-magic serves the built-in "magic" emitter plugin as a
// standalone binary, for hosts that load it from a plugin directory
// instead of the sidecar's own `sidestream internal-plugin magic`. It is
// started by the host over the plugin protocol, not by hand.
package main

import (
	"github.com/sidestream/sidestream/plugins/builtin/magic"
	"github.com/sidestream/sidestream/plugins/sdk"
)

func main() { sdk.Serve(magic.New()) }
