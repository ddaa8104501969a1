package proc

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sidestream/sidestream/core/guest"
)

// PidFileOptions configure a PidFileSource.
type PidFileOptions struct {
	// Pattern names the pid files, e.g. /run/guests/{guest}.pid.
	Pattern guest.Pattern
	Labels  map[string]string
	// Every is the poll period (default 500ms).
	Every time.Duration
	// ProcRoot is /proc unless a test points elsewhere.
	ProcRoot string
}

// PidFileSource reports a guest per pid file whose process runs.
type PidFileSource struct{ o PidFileOptions }

// NewPidFile returns a PidFileSource.
func NewPidFile(o PidFileOptions) *PidFileSource {
	if o.Every <= 0 {
		o.Every = 500 * time.Millisecond
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	return &PidFileSource{o: o}
}

// Run implements guest.Source.
func (s *PidFileSource) Run(ctx context.Context, report func([]guest.Guest)) error {
	return poll(ctx, s.o.Every, s.Scan, report)
}

// Scan reads every pid file once. A file that does not hold a pid, or
// names a process that is not running, is no guest.
func (s *PidFileSource) Scan() ([]guest.Guest, error) {
	ms, err := filepath.Glob(s.o.Pattern.Glob())
	if err != nil {
		return nil, err
	}
	out := make([]guest.Guest, 0, len(ms))
	for _, m := range ms {
		name, ok := s.o.Pattern.Match(m)
		if !ok {
			continue
		}
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || !alive(s.o.ProcRoot, pid) {
			continue
		}
		out = append(out, guest.Guest{Name: name, Path: m, PIDs: []int{pid}, Labels: maps.Clone(s.o.Labels)})
	}
	return out, nil
}
