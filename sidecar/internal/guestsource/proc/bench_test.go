package proc

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sidestream/sidestream/core/guest"
)

// fakeProcs writes a /proc root of n processes, each in the cgroup v2
// group /guests/vm-N, and a pid file per process under dir.
func fakeProcs(b *testing.B, n int, dir string) string {
	b.Helper()
	root := b.TempDir()
	for i := range n {
		pid := strconv.Itoa(1000 + i)
		p := filepath.Join(root, pid)
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
		files := map[string]string{
			filepath.Join(p, "cgroup"):           "0::/guests/vm-" + strconv.Itoa(i) + "\n",
			filepath.Join(p, "stat"):             pid + " (qemu) S 1 1 1\n",
			filepath.Join(dir, "vm-"+pid+".pid"): pid + "\n",
		}
		for path, content := range files {
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root
}

// BenchmarkScan1000 is one poll of each process source over 1,000
// guests (the cgroup source reads every process's cgroup and stat; the
// pid file source reads 1,000 pid files and stats): what a node pays
// every 500 ms by default.
func BenchmarkScan1000(b *testing.B) {
	dir := b.TempDir()
	root := fakeProcs(b, 1000, dir)
	cg, err := guest.ParsePattern("/guests/{guest}")
	if err != nil {
		b.Fatal(err)
	}
	pf, err := guest.ParsePattern(filepath.Join(dir, "{guest}.pid"))
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct {
		name string
		scan func() ([]guest.Guest, error)
	}{
		{"cgroup", NewCgroup(CgroupOptions{Pattern: cg, ProcRoot: root}).Scan},
		{"pidfile", NewPidFile(PidFileOptions{Pattern: pf, ProcRoot: root}).Scan},
	} {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if gs, err := s.scan(); err != nil || len(gs) != 1000 {
					b.Fatalf("%d guests, %v", len(gs), err)
				}
			}
		})
	}
}
