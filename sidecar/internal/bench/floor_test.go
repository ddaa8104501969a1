package bench

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// BenchmarkLoopbackFloor measures what this machine's loopback TCP gives
// with nothing above it: 64 connections, each a Go client writing a
// 180-byte request and waiting for a 120-byte answer from a Go server in
// the same process, as the track scenario's publishers do. "frame" adds
// what track adds per publish: the server also writes a 100-byte frame to
// a second connection of the same user, read by a goroutine of its own.
// No HTTP parsing, no durability, no handler: a ceiling for any server
// answering one request at a time per connection on these cores, against
// which the publish targets in BENCHMARKS.md can be read.
func BenchmarkLoopbackFloor(b *testing.B) {
	for _, frame := range []bool{false, true} {
		name := "echo/conns=64"
		if frame {
			name = "echo+frame/conns=64"
		}
		b.Run(name, func(b *testing.B) { benchFloor(b, 64, frame) })
	}
}

func benchFloor(b *testing.B, conns int, frame bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var serving sync.WaitGroup
	serving.Add(1)
	go func() {
		defer serving.Done()
		acceptFloor(ln, conns, frame)
	}()
	pubs, subs := dialFloor(b, ln.Addr().String(), conns, frame)
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			_, _ = io.Copy(io.Discard, s)
		}()
	}
	per := b.N/conns + 1
	b.ResetTimer()
	start := time.Now()
	var clients sync.WaitGroup
	for _, c := range pubs {
		clients.Add(1)
		go func() {
			defer clients.Done()
			req, buf := make([]byte, 180), make([]byte, 4096)
			for range per {
				if _, err := c.Write(req); err != nil {
					return
				}
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	clients.Wait()
	b.ReportMetric(float64(per*conns)/time.Since(start).Seconds(), "roundtrips/s")
	b.StopTimer()
	for _, c := range append(pubs, subs...) {
		c.Close()
	}
	ln.Close()
	readers.Wait()
	serving.Wait()
}

// acceptFloor pairs each publisher connection with its user's frame
// connection (dialled right after it) and echoes until the client closes.
func acceptFloor(ln net.Listener, conns int, frame bool) {
	var echoes sync.WaitGroup
	defer echoes.Wait()
	for range conns {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		var sub net.Conn
		if frame {
			if sub, err = ln.Accept(); err != nil {
				c.Close()
				return
			}
		}
		echoes.Add(1)
		go func() {
			defer echoes.Done()
			echoFloor(c, sub)
		}()
	}
}

func echoFloor(c, sub net.Conn) {
	defer c.Close()
	if sub != nil {
		defer sub.Close()
	}
	buf, answer, msg := make([]byte, 4096), make([]byte, 120), make([]byte, 100)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
		if _, err := c.Write(answer); err != nil {
			return
		}
		if sub != nil {
			if _, err := sub.Write(msg); err != nil {
				return
			}
		}
	}
}

func dialFloor(b *testing.B, addr string, conns int, frame bool) (pubs, subs []net.Conn) {
	b.Helper()
	for range conns {
		for i := range 2 {
			if i == 1 && !frame {
				break
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(fmt.Errorf("dial the floor server: %w", err))
			}
			if i == 0 {
				pubs = append(pubs, c)
			} else {
				subs = append(subs, c)
			}
		}
	}
	return pubs, subs
}
