//go:build unix && race

package rawio

import "syscall"

// Under the race detector the calls go through syscall.Read and Write:
// they tell the detector that a write happens before the read of its
// bytes, which tests that synchronize over a socket rely on.

// ReadFD reads from the non-blocking descriptor fd, retrying EINTR.
func ReadFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

// WriteFD writes to the non-blocking descriptor fd, retrying EINTR.
func WriteFD(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), b)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}
