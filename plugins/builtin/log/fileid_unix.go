//go:build unix

package logplugin

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// openFlags keeps an open from blocking forever if the path was swapped
// for a FIFO between the check and the open; regular files ignore it.
const openFlags = syscall.O_NONBLOCK

func identityOf(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)} //nolint:unconvert // Dev is int32 on some unixes
}

// openedPath returns the real path of an open file from /proc (Linux);
// ok is false where /proc is unavailable.
func openedPath(f *os.File) (string, bool) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10))
	if err != nil {
		return "", false
	}
	return strings.TrimSuffix(p, " (deleted)"), true
}
