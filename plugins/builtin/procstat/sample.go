package procstat

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// Sample is one event's data.
type Sample struct {
	Processes         int      `json:"processes"`
	Threads           int      `json:"threads"`
	CPUSeconds        float64  `json:"cpu_seconds"`
	CPUPercent        float64  `json:"cpu_percent"`
	RSSBytes          int64    `json:"rss_bytes"`
	ReadBytes         uint64   `json:"read_bytes"`
	WriteBytes        uint64   `json:"write_bytes"`
	CgroupMemoryBytes *int64   `json:"cgroup_memory_bytes,omitempty"`
	CgroupCPUSeconds  *float64 `json:"cgroup_cpu_seconds,omitempty"`
}

type sampler struct {
	fs         procfs.FS
	cgroupRoot string
	c          Config
	lastCPU    float64
	lastAt     time.Time
}

func newSampler(procRoot, cgroupRoot string, c Config) (*sampler, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, err
	}
	return &sampler{fs: fs, cgroupRoot: cgroupRoot, c: c}, nil
}

func (s *sampler) sample(now time.Time) Sample {
	var out Sample
	for _, pid := range s.pids() {
		p, err := s.fs.Proc(pid)
		if err != nil {
			continue
		}
		st, err := p.Stat()
		if err != nil || st.State == "Z" {
			continue // exited meanwhile, or a zombie: nothing left to measure
		}
		out.Processes++
		out.Threads += st.NumThreads
		out.CPUSeconds += st.CPUTime()
		out.RSSBytes += int64(st.ResidentMemory())
		if io, err := p.IO(); err == nil {
			out.ReadBytes += io.ReadBytes
			out.WriteBytes += io.WriteBytes
		}
	}
	if !s.lastAt.IsZero() {
		if wall := now.Sub(s.lastAt).Seconds(); wall > 0 && out.CPUSeconds >= s.lastCPU {
			out.CPUPercent = (out.CPUSeconds - s.lastCPU) / wall * 100
		}
	}
	s.lastCPU, s.lastAt = out.CPUSeconds, now
	if s.c.Cgroup != "" {
		out.CgroupMemoryBytes = s.cgroupMemory()
		out.CgroupCPUSeconds = s.cgroupCPU()
	}
	return out
}

// pids are the processes to measure: the cgroup's, or the pid and its
// descendants (found by their parent pids).
func (s *sampler) pids() []int {
	if s.c.Cgroup != "" {
		return s.cgroupPIDs()
	}
	procs, err := s.fs.AllProcs()
	if err != nil {
		return []int{s.c.PID}
	}
	children := map[int][]int{}
	for _, p := range procs {
		if st, err := p.Stat(); err == nil {
			children[st.PPID] = append(children[st.PPID], p.PID)
		}
	}
	out := []int{s.c.PID}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cgroupDirs are where the cgroup's files may be: the v2 tree, then the
// v1 hierarchies that hold what is read.
func (s *sampler) cgroupDirs() []string {
	rel := strings.TrimPrefix(s.c.Cgroup, "/")
	return []string{
		filepath.Join(s.cgroupRoot, rel),
		filepath.Join(s.cgroupRoot, "unified", rel),
		filepath.Join(s.cgroupRoot, "pids", rel),
		filepath.Join(s.cgroupRoot, "memory", rel),
		filepath.Join(s.cgroupRoot, "cpu,cpuacct", rel),
		filepath.Join(s.cgroupRoot, "cpuacct", rel),
	}
}

func (s *sampler) cgroupPIDs() []int {
	for _, d := range s.cgroupDirs() {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return out
	}
	return nil
}

// readInt reads the first file of names that exists in any cgroup dir.
func (s *sampler) readInt(names ...string) (int64, bool) {
	for _, d := range s.cgroupDirs() {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(d, n))
			if err != nil {
				continue
			}
			if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

func (s *sampler) cgroupMemory() *int64 {
	if v, ok := s.readInt("memory.current", "memory.usage_in_bytes"); ok {
		return &v
	}
	return nil
}

func (s *sampler) cgroupCPU() *float64 {
	for _, d := range s.cgroupDirs() {
		if b, err := os.ReadFile(filepath.Join(d, "cpu.stat")); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
					if us, err := strconv.ParseFloat(v, 64); err == nil {
						sec := us / 1e6
						return &sec
					}
				}
			}
		}
	}
	if ns, ok := s.readInt("cpuacct.usage"); ok {
		sec := float64(ns) / 1e9
		return &sec
	}
	return nil
}
