//go:build !unix

package streamhttp

import "time"

// cpuTime is not measured here: the benchmark's cores and CPU per event
// read 0.
func cpuTime() time.Duration { return 0 }
