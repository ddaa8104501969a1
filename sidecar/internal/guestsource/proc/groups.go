package proc

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/core/guest"
)

// CgroupOptions configure a CgroupSource.
type CgroupOptions struct {
	// Pattern is matched against each process's cgroup path, e.g.
	// /machine.slice/machine-{guest}.scope.
	Pattern guest.Pattern
	// Controller picks the v1 hierarchy whose path is matched when there
	// is no v2 path (default: any).
	Controller string
	Labels     map[string]string
	// Every is the poll period (default 500ms).
	Every time.Duration
	// ProcRoot is /proc unless a test points elsewhere.
	ProcRoot string
}

// CgroupSource reports one guest per cgroup path that matches, with every
// process in it.
type CgroupSource struct{ o CgroupOptions }

// NewCgroup returns a CgroupSource.
func NewCgroup(o CgroupOptions) *CgroupSource {
	if o.Every <= 0 {
		o.Every = 500 * time.Millisecond
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	return &CgroupSource{o: o}
}

// Run implements guest.Source.
func (s *CgroupSource) Run(ctx context.Context, report func([]guest.Guest)) error {
	return poll(ctx, s.o.Every, s.Scan, report)
}

// Scan reads every process's cgroup once.
func (s *CgroupSource) Scan() ([]guest.Guest, error) {
	all, err := pids(s.o.ProcRoot)
	if err != nil {
		return nil, err
	}
	byName := map[string]*guest.Guest{}
	for _, pid := range all {
		f, err := os.Open(filepath.Join(s.o.ProcRoot, strconv.Itoa(pid), "cgroup"))
		if err != nil {
			continue // exited meanwhile
		}
		entries, err := ParseCgroup(f)
		f.Close()
		if err != nil {
			continue
		}
		path := GroupPath(entries, s.o.Controller)
		name, ok := s.o.Pattern.Match(path)
		if !ok || !alive(s.o.ProcRoot, pid) {
			continue
		}
		g := byName[name]
		if g == nil {
			g = &guest.Guest{Name: name, Cgroup: path, Labels: maps.Clone(s.o.Labels)}
			byName[name] = g
		}
		g.PIDs = append(g.PIDs, pid)
	}
	out := make([]guest.Guest, 0, len(byName))
	for _, g := range byName {
		slices.Sort(g.PIDs)
		out = append(out, *g)
	}
	return out, nil
}

// poll reports scan's guests now and every period until ctx ends. A
// failed scan reports nothing: one failed read of /proc must not make
// every guest gone.
func poll(ctx context.Context, every time.Duration, scan func() ([]guest.Guest, error), report func([]guest.Guest)) error {
	if gs, err := scan(); err != nil {
		return err // cannot read at all: say so at once
	} else {
		report(gs)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if gs, err := scan(); err == nil {
				report(gs)
			}
		}
	}
}
