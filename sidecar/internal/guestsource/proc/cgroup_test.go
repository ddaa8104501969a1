package proc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/guest"
)

func TestParseCgroupLayouts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, controller, want string
		entries                int
	}{
		{"cgroup-v1", "", `/machine.slice/machine-qemu\x2d1\x2dvm-a.scope`, 6},
		{"cgroup-v1", "memory", `/machine.slice/machine-qemu\x2d1\x2dvm-a.scope`, 6},
		{"cgroup-v2", "", "/sandboxes/sb-7/runtime", 1},
		{"cgroup-hybrid", "pids", "/sandboxes/sb-9", 3},
		{"cgroup-v1-split", "memory", "/guests/mem-only", 3},
		{"cgroup-v1-split", "", "/guests/mem-only", 3},
		{"cgroup-v1-split", "name=systemd", "/system.slice/other.service", 3},
	} {
		t.Run(tc.file+"/"+tc.controller, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			es, err := ParseCgroup(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != tc.entries {
				t.Fatalf("%d entries, want %d: %+v", len(es), tc.entries, es)
			}
			if got := GroupPath(es, tc.controller); got != tc.want {
				t.Fatalf("GroupPath = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseCgroupRefusesGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"nonsense\n", "x:cpu:/a\n"} {
		if _, err := ParseCgroup(strings.NewReader(in)); err == nil {
			t.Errorf("ParseCgroup(%q) accepted it", in)
		}
	}
}

// fakeProc lays out a /proc tree: pid -> (cgroup fixture, state).
func fakeProc(t *testing.T, procs map[int][2]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("testdata", p[0]))
		if err != nil {
			t.Fatal(err)
		}
		stat := strconv.Itoa(pid) + " (qemu) x) " + p[1] + " 1 1 1\n"
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not a process: ignored.
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestCgroupSourceGroupsProcesses(t *testing.T) {
	t.Parallel()
	root := fakeProc(t, map[int][2]string{
		101: {"cgroup-v1", "S"}, 102: {"cgroup-v1", "R"}, 103: {"cgroup-v1", "Z"},
		201: {"cgroup-v2", "S"}, 301: {"cgroup-hybrid", "S"}, 401: {"cgroup-v1-split", "S"},
	})
	for _, tc := range []struct {
		pattern string
		want    map[string][]int
	}{
		{`/machine.slice/machine-qemu\\x2d1\\x2d{guest}.scope`, map[string][]int{"vm-a": {101, 102}}},
		{"/sandboxes/{guest}", map[string][]int{"sb-9": {301}}},
		{"/sandboxes/{guest}/*", map[string][]int{"sb-7": {201}}},
		{"/guests/{guest}", map[string][]int{"mem-only": {401}}},
	} {
		p, err := guest.ParsePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := NewCgroup(CgroupOptions{Pattern: p, ProcRoot: root, Labels: map[string]string{"kind": "vm"}}).Scan()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int{}
		for _, g := range gs {
			got[g.Name] = g.PIDs
			if g.Labels["kind"] != "vm" || g.Cgroup == "" {
				t.Errorf("%s: guest %+v lacks its labels or cgroup", tc.pattern, g)
			}
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: guests %v, want %v", tc.pattern, got, tc.want)
		}
		for name, pids := range tc.want {
			if !slices.Equal(got[name], pids) {
				t.Errorf("%s: %s has pids %v, want %v (a zombie is not counted)", tc.pattern, name, got[name], pids)
			}
		}
	}
}

func TestPidFileSourceNeedsARunningProcess(t *testing.T) {
	t.Parallel()
	root := fakeProc(t, map[int][2]string{500: {"cgroup-v2", "S"}, 501: {"cgroup-v2", "Z"}})
	dir := t.TempDir()
	for name, content := range map[string]string{"up.pid": "500\n", "zombie.pid": "501", "dead.pid": "999", "junk.pid": "abc"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := guest.ParsePattern(filepath.Join(dir, "{guest}.pid"))
	if err != nil {
		t.Fatal(err)
	}
	gs, err := NewPidFile(PidFileOptions{Pattern: p, ProcRoot: root}).Scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Name != "up" || gs[0].PID() != 500 || gs[0].Path != filepath.Join(dir, "up.pid") {
		t.Fatalf("guests %+v, want only up with pid 500", gs)
	}
}

// A running cgroup source polls: a process that exits (its /proc entry
// gone) takes its guest with it at the next poll, and one that starts in
// a matching group brings its guest.
func TestCgroupSourcePollsComingsAndGoings(t *testing.T) {
	t.Parallel()
	root := fakeProc(t, map[int][2]string{101: {"cgroup-v1", "S"}, 201: {"cgroup-v2", "S"}})
	p, err := guest.ParsePattern("/sandboxes/{guest}/*")
	if err != nil {
		t.Fatal(err)
	}
	src := NewCgroup(CgroupOptions{Pattern: p, ProcRoot: root, Every: 10 * time.Millisecond})
	reports := make(chan []guest.Guest, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- src.Run(ctx, func(gs []guest.Guest) {
			select {
			case reports <- gs:
			case <-ctx.Done():
			}
		})
	}()
	defer func() { cancel(); <-done }()
	wait := func(want ...string) {
		t.Helper()
		for i := 0; i < 1000; i++ {
			var got []string
			for _, g := range <-reports {
				got = append(got, g.Name)
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("no report of guests %v", want)
	}
	wait("sb-7")
	if err := os.RemoveAll(filepath.Join(root, "201")); err != nil {
		t.Fatal(err)
	}
	wait()
	dir := filepath.Join(root, "202")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::/sandboxes/sb-8/vcpu0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("sb-8")
}
