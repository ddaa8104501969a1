// Package files is the guest source of a path pattern over per-guest
// files (/var/log/guests/{guest}/console.log): every existing path that
// matches is a guest. It watches the directories that can hold a match
// with inotify (fsnotify), so a guest whose file is created or removed is
// seen at once. While the pattern's base directory does not exist yet, it
// watches the nearest existing ancestor instead, and moves the watch down
// as the missing directories appear (and back up if they go). It rescans on
// a timer in case a watch could not be set (inotify limits, a guest
// directory that is a symlink to a directory created later elsewhere).
package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
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
		case ev := <-w.Events:
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				// The kernel dropped the watch of a removed directory: a
				// directory made again at that path must be watched again.
				delete(watched, ev.Name)
			}
			// Writes and mode changes make and end no guest; ignoring them
			// keeps a busy console (or log directory) from postponing the
			// settle forever.
			if ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
				debounce.Reset(settle)
			}
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
// It looks again after setting the watches, as a directory made before its
// parent was watched raises no event (the base made while its ancestor
// was being watched); a few rounds settle any realistic race, and the
// timer catches the rest.
func (s *Source) scanWatching(w *fsnotify.Watcher, watched map[string]bool) []guest.Guest {
	for range 4 {
		if !s.syncWatches(w, watched) {
			break
		}
	}
	return Scan(s.o.Pattern, s.o.Labels)
}

// syncWatches makes the watched set Dirs and reports whether it changed.
func (s *Source) syncWatches(w *fsnotify.Watcher, watched map[string]bool) bool {
	want := map[string]bool{}
	for _, d := range Dirs(s.o.Pattern) {
		want[d] = true
	}
	changed := false
	for d := range watched {
		if !want[d] {
			_ = w.Remove(d) // gone with its directory, usually
			delete(watched, d)
			changed = true
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
		changed = true
	}
	return changed
}

// Dirs are the existing directories whose entries can make a match. While
// no directory matches the pattern's base (the one holding {guest}), they
// are the deepest existing ancestor's instead: the next missing directory
// is made there, and the next scan moves the watch down.
func Dirs(p guest.Pattern) []string {
	pats := p.Dirs()
	var out []string
	for _, g := range pats {
		out = appendDirs(out, glob(g))
	}
	for d := pats[0]; len(out) == 0 && d != filepath.Dir(d); {
		d = filepath.Dir(d)
		out = appendDirs(out, glob(d))
	}
	return out
}

func appendDirs(out, paths []string) []string {
	for _, m := range paths {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			out = append(out, m)
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
