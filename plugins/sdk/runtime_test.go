package sdk

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// Not parallel: it sets the test process's GOMAXPROCS and GC percent.
func TestApplyRuntimeDefaults(t *testing.T) {
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	})
	cases := []struct {
		name      string
		env       map[string]string
		wantProcs int
		wantGC    int
	}{
		{"plugin defaults when unset", nil, pluginMaxProcs, pluginGCPercent},
		{"the environment wins", map[string]string{"GOMAXPROCS": "3", "GOGC": "50"}, 3, 50},
		{"one set, the other defaulted", map[string]string{"GOGC": "50"}, pluginMaxProcs, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// What the runtime read from the environment at start.
			runtime.GOMAXPROCS(3)
			debug.SetGCPercent(50)
			applyRuntimeDefaults(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if got := runtime.GOMAXPROCS(0); got != tc.wantProcs {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tc.wantProcs)
			}
			if got := debug.SetGCPercent(50); got != tc.wantGC {
				t.Errorf("GC percent = %d, want %d", got, tc.wantGC)
			}
		})
	}
}
