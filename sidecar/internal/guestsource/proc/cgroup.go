// Package proc holds the guest sources of process groups: every process
// whose cgroup path matches a pattern (cgroup v1 or v2 layout), or the
// process named by a pid file per guest. Both read /proc (a root that
// tests point at fixture trees) and poll: a process's exit raises no file
// event.
package proc

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CgroupEntry is one line of /proc/PID/cgroup: hierarchy id, controllers
// and path. Under cgroup v2 there is one line, "0::/path"; under v1 one
// per hierarchy ("4:memory:/path", "1:name=systemd:/path"); a hybrid
// layout has both.
type CgroupEntry struct {
	ID          int
	Controllers []string
	Path        string
}

// Unified reports whether the entry is the cgroup v2 hierarchy.
func (e CgroupEntry) Unified() bool { return e.ID == 0 && len(e.Controllers) == 0 }

// ParseCgroup reads a /proc/PID/cgroup file.
func ParseCgroup(r io.Reader) ([]CgroupEntry, error) {
	var out []CgroupEntry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("cgroup line %d: %q is not id:controllers:path", n, line)
		}
		id, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, fmt.Errorf("cgroup line %d: hierarchy id %q: %w", n, parts[0], err)
		}
		e := CgroupEntry{ID: id, Path: parts[2]}
		if parts[1] != "" {
			e.Controllers = strings.Split(parts[1], ",")
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// GroupPath is the path a pattern is matched against: the v2 unified
// path when there is one, else the v1 path of the preferred controller
// (any hierarchy when it is empty or absent).
func GroupPath(entries []CgroupEntry, controller string) string {
	for _, e := range entries {
		if e.Unified() && e.Path != "/" {
			return e.Path
		}
	}
	fallback := ""
	for _, e := range entries {
		if e.Unified() {
			continue
		}
		for _, c := range e.Controllers {
			if c == controller {
				return e.Path
			}
		}
		if fallback == "" || fallback == "/" {
			fallback = e.Path
		}
	}
	if fallback == "" {
		for _, e := range entries {
			if e.Unified() {
				return e.Path
			}
		}
	}
	return fallback
}
