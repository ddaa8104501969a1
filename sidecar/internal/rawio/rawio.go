// Package rawio reads and writes non-blocking sockets with raw system
// calls, waiting on Go's poller only when the socket is not ready.
//
// A read or write on a non-blocking socket never blocks; it only spends
// CPU in the kernel, and a loopback write runs the receiver's TCP input
// as well, often for more than 20 µs. Through net.Conn the runtime marks
// the goroutine's P as in a system call for that time, and sysmon, seeing
// it there on two of its ticks, hands the P to another thread (a futex
// wake-up, later a thread parked again) and keeps polling every 20 µs.
// Raw calls keep the P on the thread that is using the CPU anyway.
// Deadlines set on the connection still bound the waits.
package rawio

import (
	"net"
	"syscall"
)

// Conn returns c's descriptor access, or nil when c has none (then the
// functions below go through c).
func Conn(c net.Conn) syscall.RawConn {
	if !supported {
		return nil
	}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}
