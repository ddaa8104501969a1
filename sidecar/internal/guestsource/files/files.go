// Package files is the guest source of a path pattern over per-guest
// files (/var/log/guests/{guest}/console.log): every existing path that
// matches is a guest. It watches the directories that can hold a match
// with inotify (fsnotify), so a guest whose file is created or removed is
// seen at once, and rescans on a timer in case a watch could not be set
// (a directory created before its parent was watched, inotify limits).
package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sidestream/sidestream/core/guest"
)

// Options configure a Source.
type Options struct {
	Pattern guest.Pattern
	// Labels are put on every guest.
	Labels map[string]string
	// Rescan is the fallback rescan period (default 10s).
	Rescan time.Duration
	Log    *slog.Logger
}

// Source watches a path pattern.
type Source struct {
	o Options
}

// settle is how long a burst of file events is collected before one
// rescan: creating a guest's directory and file is one change, not two.
const settle = 50 * time.Millisecond

// New returns a Source.
func New(o Options) *Source {
	if o.Rescan <= 0 {
		o.Rescan = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Source{o: o}
}

// Run implements guest.Source.
func (s *Source) Run(ctx context.Context, report func([]guest.Guest)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("guest files %s: %w", s.o.Pattern, err)
	}
	defer w.Close()
	watched := map[string]bool{}
	rescan := func() { report(s.scanWatching(w, watched)) }
	rescan()
	tick := time.NewTicker(s.o.Rescan)
	defer tick.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Events:
			debounce.Reset(settle)
		case err := <-w.Errors:
			// An overflow lost events: a rescan catches up.
			s.o.Log.Warn("guest file watch", "pattern", s.o.Pattern.String(), "err", err)
			debounce.Reset(settle)
		case <-debounce.C:
			rescan()
		case <-tick.C:
			rescan()
		}
	}
}

// scanWatching watches the directories that can hold a match first, then
// globs, so a file created between the two is either found or notified.
func (s *Source) scanWatching(w *fsnotify.Watcher, watched map[string]bool) []guest.Guest {
	want := map[string]bool{}
	for _, d := range Dirs(s.o.Pattern) {
		want[d] = true
	}
	for d := range watched {
		if !want[d] {
			_ = w.Remove(d) // gone with its directory, usually
			delete(watched, d)
		}
	}
	for d := range want {
		if watched[d] {
			continue
		}
		if err := w.Add(d); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				s.o.Log.Warn("guest file watch", "dir", d, "err", err)
			}
			continue
		}
		watched[d] = true
	}
	return Scan(s.o.Pattern, s.o.Labels)
}

// Dirs are the existing directories whose entries can make a match.
func Dirs(p guest.Pattern) []string {
	var out []string
	for _, g := range p.Dirs() {
		ms := glob(g)
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				out = append(out, m)
			}
		}
	}
	return out
}

// Scan lists the guests whose path matches now.
func Scan(p guest.Pattern, labels map[string]string) []guest.Guest {
	ms := glob(p.Glob())
	out := make([]guest.Guest, 0, len(ms))
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		name, ok := p.Match(m)
		if !ok || seen[name] {
			continue // a glob char in the name's segment matched more
		}
		seen[name] = true
		out = append(out, guest.Guest{Name: name, Path: m, Labels: maps.Clone(labels)})
	}
	return out
}
