package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// answerServer answers each request read on a connection with body,
// after a pause that keeps the answer from arriving before the client's
// first read (only what the client reads is asserted, never the time),
// and closes the connection after close answers (0: never).
func answerServer(t *testing.T, body string, closeAfter int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for n := 1; ; n++ {
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			resp := fmt.Sprintf("HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			if _, err := c.Write([]byte(resp)); err != nil || n == closeAfter {
				return
			}
		}
	}()
	return ln.Addr().String()
}

func TestHTTPConnOneReadPerAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		// reads is the read syscalls wanted for 20 answers (unix).
		reads uint64
	}{
		// Each answer is read by the read that follows its arrival: no
		// read finds the socket empty first.
		{"small", `{"seq":7}`, 20},
		// An answer bigger than the buffer still arrives whole, in more reads.
		{"bigger than the buffer", strings.Repeat("x", 20<<10), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := answerServer(t, tc.body, 0)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e := &env{host: host}
			c, err := e.openHTTP(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := e.request("GET", "/track/u?data=x")
			for i := range 20 {
				status, body, err := c.do(req)
				if err != nil || status != 202 || !bytes.Equal(body, []byte(tc.body)) {
					t.Fatalf("answer %d: %d %.40q %v", i, status, body, err)
				}
			}
			if tc.reads > 0 && runtime.GOOS != "windows" && c.sw.reads != tc.reads {
				t.Errorf("%d read syscalls for 20 answers, want %d", c.sw.reads, tc.reads)
			}
		})
	}
}

func TestHTTPConnServerCloses(t *testing.T) {
	t.Parallel()
	host := answerServer(t, "ok", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := &env{host: host}
	c, err := e.openHTTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := e.request("GET", "/x")
	if _, _, err := c.do(req); err != nil {
		t.Fatal(err)
	}
	// The server closed after its first answer: the next request fails
	// (write or read), it does not hang.
	if _, _, err := c.do(req); err == nil {
		t.Fatal("do after the server closed: no error")
	}
}
