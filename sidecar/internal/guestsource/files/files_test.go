package files

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/core/guest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor waits (bounded) for a report equal to want, from the channel of
// reports a running source feeds.
func waitFor(t *testing.T, reports <-chan []guest.Guest, want ...string) []guest.Guest {
	t.Helper()
	slices.Sort(want)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case gs := <-reports:
			var got []string
			for _, g := range gs {
				got = append(got, g.Name)
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				return gs
			}
		case <-deadline:
			t.Fatalf("no report of guests %v", want)
		}
	}
}

func TestFilesSourceSeesGuestsComeAndGo(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "guests")
	p, err := guest.ParsePattern(filepath.Join(base, "{guest}", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(base, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, name, "console.log"), []byte("boot\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("vm-a")
	// A rescan period far beyond the test: only inotify can make it pass.
	src := New(Options{Pattern: p, Labels: map[string]string{"tier": "vm"}, Rescan: time.Hour})
	reports := make(chan []guest.Guest, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx, func(gs []guest.Guest) { reports <- gs }) }()
	defer func() { cancel(); <-done }()

	gs := waitFor(t, reports, "vm-a")
	if gs[0].Path != filepath.Join(base, "vm-a", "console.log") || gs[0].Labels["tier"] != "vm" {
		t.Fatalf("guest %+v: wrong path or labels", gs[0])
	}
	mk("vm-b")
	waitFor(t, reports, "vm-a", "vm-b")
	// A directory without the file is no guest.
	if err := os.MkdirAll(filepath.Join(base, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(base, "vm-a", "console.log")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports, "vm-b")
	if err := os.RemoveAll(filepath.Join(base, "vm-b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports)
}

func TestScanAndDirsOfPattern(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, f := range []string{"a/console.log", "b/console.log", "c/other.log"} {
		path := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := guest.ParsePattern(filepath.Join(root, "{guest}", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range Scan(p, nil) {
		names = append(names, g.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("Scan = %v, want [a b]", names)
	}
	dirs := Dirs(p)
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")}
	if !slices.Equal(dirs, want) {
		t.Fatalf("Dirs = %v, want %v", dirs, want)
	}
}

// BenchmarkDiscover1000 is the cost of one discovery pass over 1,000
// guests: watching their directories and globbing their files.
func BenchmarkDiscover1000(b *testing.B) {
	root := b.TempDir()
	for i := range 1000 {
		dir := filepath.Join(root, "vm-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "console.log"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	p, err := guest.ParsePattern(filepath.Join(root, "{guest}", "console.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if n := len(Scan(p, nil)); n != 1000 {
			b.Fatalf("%d guests", n)
		}
	}
}

// start runs a source until the test ends and returns its reports.
func start(t *testing.T, src *Source) <-chan []guest.Guest {
	t.Helper()
	reports := make(chan []guest.Guest, 16)
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
	t.Cleanup(func() { cancel(); <-done })
	return reports
}

func mkGuest(t *testing.T, base, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(base, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, name, "console.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// On a fresh node the guest runtime makes the base directory after the
// sidecar started: the source watches the nearest existing ancestor, so
// the base and the guests under it are seen at once, also when the base
// (and its parent) is removed and made again.
func TestFilesSourceSeesBaseMadeAfterStart(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	parent := filepath.Join(root, "later")
	base := filepath.Join(parent, "guests")
	p, err := guest.ParsePattern(filepath.Join(base, "{guest}", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	// A rescan period far beyond the test: only inotify can make it pass.
	reports := start(t, New(Options{Pattern: p, Rescan: time.Hour}))
	waitFor(t, reports)
	mkGuest(t, base, "vm-a")
	waitFor(t, reports, "vm-a")
	if err := os.RemoveAll(parent); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports)
	mkGuest(t, base, "vm-b")
	waitFor(t, reports, "vm-b")
	// The watch moved down again: a guest added later is seen too.
	mkGuest(t, base, "vm-c")
	waitFor(t, reports, "vm-b", "vm-c")
}

func TestDirsOfMissingBaseAreItsNearestAncestor(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p, err := guest.ParsePattern(filepath.Join(root, "a", "b", "{guest}", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		make string // made before Dirs, under root
		want string // the one directory Dirs returns, under root
	}{
		{"", ""},
		{"a", "a"},
		{"a/b", "a/b"},
	} {
		if err := os.MkdirAll(filepath.Join(root, tc.make), 0o755); err != nil {
			t.Fatal(err)
		}
		if got, want := Dirs(p), []string{filepath.Join(root, tc.want)}; !slices.Equal(got, want) {
			t.Fatalf("with %q made: Dirs = %v, want %v", tc.make, got, want)
		}
	}
}

// A guest directory that is a symlink to a directory made later elsewhere
// raises no event in any watched directory: only the rescan finds the
// guest (and, from then on, watches its directory).
func TestFilesSourceRescanFindsUnwatchedGuests(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	base := filepath.Join(root, "guests")
	target := filepath.Join(root, "elsewhere", "vm-a")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(base, "vm-a")); err != nil {
		t.Fatal(err)
	}
	p, err := guest.ParsePattern(filepath.Join(base, "{guest}", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	reports := start(t, New(Options{Pattern: p, Rescan: 50 * time.Millisecond}))
	waitFor(t, reports)
	mkGuest(t, filepath.Dir(target), "vm-a")
	waitFor(t, reports, "vm-a")
	if err := os.Remove(filepath.Join(target, "console.log")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reports)
}
