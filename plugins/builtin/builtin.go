// Package builtin is the registry of the plugins that ship with sidestream:
// log, magic, time, fibonacci and procstat. The sidecar binary serves them by
// re-executing itself as `sidestream internal-plugin NAME`, which calls
// ServeBuiltin; the standalone binaries under plugins/cmd serve one each.
package builtin

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sidestream/sidestream/plugins/builtin/fibonacci"
	logplugin "github.com/sidestream/sidestream/plugins/builtin/log"
	"github.com/sidestream/sidestream/plugins/builtin/magic"
	"github.com/sidestream/sidestream/plugins/builtin/procstat"
	timeplugin "github.com/sidestream/sidestream/plugins/builtin/time"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// ErrUnknownPlugin is returned for a name that is not a built-in.
var ErrUnknownPlugin = errors.New("unknown built-in plugin")

// constructors build a fresh plugin per call: log reads its roots from the
// environment when it is built, which must be the serving process's.
var constructors = map[string]func() sdk.Plugin{
	"fibonacci": fibonacci.New,
	"log":       logplugin.New,
	"magic":     magic.New,
	"procstat":  procstat.New,
	"time":      timeplugin.New,
}

// Names returns the built-in plugin names, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Get builds the named built-in plugin.
func Get(name string) (sdk.Plugin, bool) {
	c, ok := constructors[name]
	if !ok {
		return nil, false
	}
	return c(), true
}

// Plugins builds every built-in plugin, keyed by name.
func Plugins() map[string]sdk.Plugin {
	m := make(map[string]sdk.Plugin, len(constructors))
	for n, c := range constructors {
		m[n] = c()
	}
	return m
}

// ServeBuiltin serves the named plugin over the plugin protocol until the
// host hangs up (sdk.Serve). It fails at once for an unknown name.
func ServeBuiltin(name string) error {
	p, ok := Get(name)
	if !ok {
		return fmt.Errorf("%w %q (built-ins: %v)", ErrUnknownPlugin, name, Names())
	}
	sdk.Serve(p)
	return nil
}
