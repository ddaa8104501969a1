//go:build linux || darwin || freebsd

package bolt

import "golang.org/x/sys/unix"

// freeBytes is the space an unprivileged writer may still use on the
// filesystem holding dir.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
