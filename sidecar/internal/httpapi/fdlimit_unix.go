//go:build unix

package httpapi

import "syscall"

// openFileLimit is the process's open-file limit (RLIMIT_NOFILE; Go
// raises the soft limit to the hard one at start), 0 if unknown or
// unlimited.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<40 {
		return 0
	}
	return uint64(r.Cur)
}
