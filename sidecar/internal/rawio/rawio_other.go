//go:build !unix

package rawio

import (
	"net"
	"syscall"
)

// Elsewhere Conn gives no RawConn and reads and writes go through c.
const supported = false

// Read reads through c.
func Read(c net.Conn, _ syscall.RawConn, p []byte) (int, error) { return c.Read(p) }

// Write writes through c.
func Write(c net.Conn, _ syscall.RawConn, b []byte) (int, error) { return c.Write(b) }
