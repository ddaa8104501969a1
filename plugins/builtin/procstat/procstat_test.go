package procstat

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	self := strconv.Itoa(os.Getpid())
	sdktest.Conformance(t, New(), sdktest.Suite{
		ValidConfigs: []json.RawMessage{
			json.RawMessage(`{"pid":` + self + `,"interval":"100ms"}`), json.RawMessage(`{"pid":1}`),
			json.RawMessage(`{"cgroup":"/x.scope","interval":"2s"}`),
		},
		InvalidConfigs: []json.RawMessage{
			json.RawMessage(`{}`), json.RawMessage(`{"pid":-3}`), json.RawMessage(`{"pid":1,"interval":"10ms"}`),
			json.RawMessage(`{"pid":1,"interval":"soon"}`), json.RawMessage(`{"pid":"1"}`), json.RawMessage(`{"pids":[1]}`),
		},
		NeedsEvents: true,
	})
}

// A busy child shows as CPU use and resident memory of the process tree
// measured from its parent (the test).
func TestSampleOfABusyChild(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", "while kill -0 $PPID 2>/dev/null; do :; done") // ends with the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s, err := newSampler("/proc", t.TempDir(), Config{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	first := s.sample(time.Now())
	if first.Processes < 2 || first.RSSBytes < 1<<20 || first.Threads < 2 {
		t.Fatalf("first sample %+v: want the test and its child, some MiB resident", first)
	}
	var last Sample
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		if last = s.sample(time.Now()); last.CPUSeconds > first.CPUSeconds+0.05 {
			break
		}
	}
	if last.CPUSeconds <= first.CPUSeconds || last.CPUPercent <= 0 || last.CPUPercent > 100*float64(64) {
		t.Fatalf("samples %+v then %+v: the busy child's CPU time does not show", first, last)
	}
}

// Cgroup files of both layouts are read where present.
func TestSampleReadsCgroupFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		layout string
		files  map[string]string
		mem    int64
		cpu    float64
	}{
		{"v2", map[string]string{"g/cgroup.procs": "", "g/memory.current": "4096\n", "g/cpu.stat": "usage_usec 2500000\nuser_usec 1\n"}, 4096, 2.5},
		{"v1", map[string]string{"pids/g/cgroup.procs": "", "memory/g/memory.usage_in_bytes": "8192\n", "cpuacct/g/cpuacct.usage": "1500000000\n"}, 8192, 1.5},
	} {
		root := t.TempDir()
		for name, content := range tc.files {
			path := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, "cgroup.procs") {
				content = strconv.Itoa(os.Getpid()) + "\n"
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := newSampler("/proc", root, Config{Cgroup: "/g"})
		if err != nil {
			t.Fatal(err)
		}
		got := s.sample(time.Now())
		if got.Processes != 1 || got.CgroupMemoryBytes == nil || *got.CgroupMemoryBytes != tc.mem ||
			got.CgroupCPUSeconds == nil || *got.CgroupCPUSeconds != tc.cpu {
			t.Errorf("%s: sample %+v, want 1 process, memory %d, cpu %v", tc.layout, got, tc.mem, tc.cpu)
		}
	}
}

// fakeProc writes a /proc tree of processes: pid -> stat line fields
// (ppid, state, utime and stime ticks, threads, rss pages) and io counters.
func fakeProc(t *testing.T, procs map[int]string, io map[int][2]int) string {
	t.Helper()
	root := t.TempDir()
	for pid, stat := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var ppid, state, utime, stime, threads, rss string
		if _, err := fmt.Sscan(stat, &ppid, &state, &utime, &stime, &threads, &rss); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%d (qemu) x) %s %s 1 1 0 -1 4194304 100 0 0 0 %s %s 0 0 20 0 %s 0 2249041 3133440 %s 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			pid, state, ppid, utime, stime, threads, rss)
		files := map[string]string{"stat": line}
		if c, ok := io[pid]; ok {
			files["io"] = fmt.Sprintf("rchar: 1\nwchar: 1\nsyscr: 1\nsyscw: 1\nread_bytes: %d\nwrite_bytes: %d\ncancelled_write_bytes: 0\n", c[0], c[1])
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// A guest's pid is measured with its descendants, and only them: their
// processes, threads, CPU time, resident memory and storage I/O summed,
// a zombie left out.
func TestSampleSumsAProcessTree(t *testing.T) {
	t.Parallel()
	root := fakeProc(t, map[int]string{
		// ppid state utime stime threads rss(pages)
		10: "1 S 150 50 4 100",   // the guest's main process
		11: "10 R 100 100 2 50",  // its child
		12: "11 S 0 0 1 10",      // a grandchild
		13: "11 Z 500 500 1 0",   // a zombie child: not measured
		20: "1 S 9000 9000 8 99", // another guest
	}, map[int][2]int{10: {4096, 8192}, 11: {1 << 20, 0}, 20: {1 << 30, 1 << 30}})
	s, err := newSampler(root, t.TempDir(), Config{PID: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := s.sample(time.Now())
	page := int64(os.Getpagesize())
	want := Sample{Processes: 3, Threads: 7, CPUSeconds: 4, RSSBytes: 160 * page, ReadBytes: 4096 + 1<<20, WriteBytes: 8192}
	if got != want {
		t.Fatalf("sample %+v, want %+v", got, want)
	}
}

// Every field of a sample is declared, with a numeric type, in the
// schema's $defs.event, which clients read to chart them.
func TestEventFieldsAreDeclaredNumeric(t *testing.T) {
	t.Parallel()
	var sch struct {
		Defs struct {
			Event struct {
				Properties map[string]struct{ Type string } `json:"properties"`
				Required   []string                         `json:"required"`
			} `json:"event"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(New().Describe().ConfigSchema, &sch); err != nil {
		t.Fatal(err)
	}
	mem, cpu := int64(1), 1.0
	raw, err := json.Marshal(Sample{CgroupMemoryBytes: &mem, CgroupCPUSeconds: &cpu})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	props := sch.Defs.Event.Properties
	for name := range fields {
		if typ := props[name].Type; typ != "integer" && typ != "number" {
			t.Errorf("event field %s is declared %q, want integer or number", name, typ)
		}
	}
	if len(props) != len(fields) {
		t.Errorf("the schema declares %d event fields, a sample has %d", len(props), len(fields))
	}
	for _, name := range sch.Defs.Event.Required {
		if _, ok := fields[name]; !ok {
			t.Errorf("required event field %s is not in a sample", name)
		}
	}
}
