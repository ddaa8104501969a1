package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// ErrNoProcess means the target process could not be found or read.
var ErrNoProcess = errors.New("target process not found")

// procSample is one reading of a process and its descendants.
type procSample struct {
	At       time.Time
	CPU      time.Duration // the process itself (user + system)
	Sys      time.Duration // of CPU, in the kernel (syscalls, the TCP stack)
	RSS      int64         // bytes
	Threads  int
	ChildCPU time.Duration // its descendants (the plugin processes)
	ChildRSS int64
}

// cpuTimes is a process's CPU so far: Total (user + system) and, of it,
// Sys (system).
type cpuTimes struct{ Total, Sys time.Duration }

// readProc reads pid and its descendants from /proc.
func readProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	st, err := readStat(pid)
	if err != nil {
		return s, err
	}
	s.CPU, s.Sys, s.RSS, s.Threads = st.cpu, st.sys, st.rss, st.threads
	for _, c := range descendants(pid) {
		if cs, err := readStat(c); err == nil {
			s.ChildCPU += cs.cpu
			s.ChildRSS += cs.rss
		}
	}
	return s, nil
}

type statInfo struct {
	ppid    int
	cpu     time.Duration
	sys     time.Duration
	rss     int64
	threads int
}

// readStat parses /proc/PID/stat: fields after the ")" closing the command
// name (which may hold spaces) are state ppid … utime(14) stime(15) …
// num_threads(20) … rss(24, pages).
func readStat(pid int) (statInfo, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return statInfo{}, fmt.Errorf("%w: %w", ErrNoProcess, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statInfo{}, fmt.Errorf("%w: malformed stat of %d", ErrNoProcess, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return statInfo{}, fmt.Errorf("%w: short stat of %d", ErrNoProcess, pid)
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return statInfo{
		ppid:    int(n(4)),
		cpu:     time.Duration(n(14)+n(15)) * time.Second / clockTicks,
		sys:     time.Duration(n(15)) * time.Second / clockTicks,
		rss:     n(24) * int64(os.Getpagesize()),
		threads: int(n(20)),
	}, nil
}

// descendants lists every process below pid (children, grandchildren …).
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil {
			parent[p] = st.ppid
		}
	}
	var out []int
	for p := range parent {
		for q, hops := parent[p], 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// isLocal reports whether host names this machine.
func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// pidByPort finds the process listening on TCP port: the socket inode
// from /proc/net/tcp{,6}, then the process holding that inode in its fds.
func pidByPort(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, ino := range listenInodes(f, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("%w: nothing listens on port %d", ErrNoProcess, port)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoProcess, err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if holdsInode(pid, inodes) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%w: the listener on port %d belongs to a process we cannot read", ErrNoProcess, port)
}

// listenInodes returns the inodes of LISTEN sockets (state 0A) on port.
func listenInodes(path string, port int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 10 || fl[3] != "0A" || !strings.HasSuffix(fl[1], want) {
			continue
		}
		out = append(out, fl[9])
	}
	return out
}

func holdsInode(pid int, inodes map[string]bool) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
			return true
		}
	}
	return false
}
