//go:build unix

package bench

import (
	"fmt"
	"syscall"
	"time"
)

// raiseNoFile lifts this process's open-file soft limit to its hard limit
// (many connections need many descriptors) and returns the new soft limit.
func raiseNoFile() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return r.Cur, nil
}

// selfCPU is this process's CPU so far: user + system, and system
// (the kernel's side: syscalls, the loopback TCP stack) alone.
func selfCPU() cpuTimes {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return cpuTimes{}
	}
	return cpuTimes{Total: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), Sys: time.Duration(ru.Stime.Nano())}
}
