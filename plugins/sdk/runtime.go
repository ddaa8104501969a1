package sdk

import (
	"runtime"
	"runtime/debug"
)

// Runtime defaults of a plugin process, unless its environment (the
// plugin source's env) sets GOMAXPROCS or GOGC itself.
const (
	// pluginMaxProcs: a plugin answers the host one message at a time per
	// instance, so a second P mostly wakes another thread for each
	// message (futex, spinning, sysmon) on cores the sidecar needs.
	pluginMaxProcs = 1
	// pluginGCPercent: a plugin's live heap is a few MB, so at the
	// default 100 a plugin building large results (fibonacci) collects
	// dozens of times a second, each cycle paying its fixed cost.
	pluginGCPercent = 400
)

// applyRuntimeDefaults sets the process's GOMAXPROCS and GC percent to
// the plugin defaults where lookup (os.LookupEnv) finds no setting. In
// the fib benchmark's plugin round trip this cut the plugin's CPU per
// next by about 40%.
func applyRuntimeDefaults(lookup func(string) (string, bool)) {
	if _, set := lookup("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(pluginMaxProcs)
	}
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(pluginGCPercent)
	}
}
