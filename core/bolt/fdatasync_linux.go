package bolt

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data and the size change of an append, but not
// its timestamps: one device flush instead of two.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
