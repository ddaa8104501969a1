package procstat

import (
	"encoding/json"
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
