// Command sidestream-procstat serves the built-in "procstat" emitter
// plugin as a standalone binary, for hosts that load it from a plugin
// directory instead of the sidecar's own `sidestream internal-plugin
// procstat`. It is started by the host over the plugin protocol.
package main

import (
	"github.com/sidestream/sidestream/plugins/builtin/procstat"
	"github.com/sidestream/sidestream/plugins/sdk"
)

func main() { sdk.Serve(procstat.New()) }
