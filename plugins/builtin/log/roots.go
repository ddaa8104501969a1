package logplugin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// Errors of path containment. Validate reports them as field errors on
// "path"; Run returns them (wrapped) when a file turns bad after Validate,
// e.g. swapped for a symlink that points outside the roots.
var (
	ErrNoRoots       = errors.New("file sources are disabled: no log roots configured (the host sets " + RootsEnv + ")")
	ErrRelativePath  = errors.New("path must be absolute")
	ErrDotDot        = errors.New(`path must not contain ".." elements`)
	ErrOutsideRoots  = errors.New("path is outside the configured log roots")
	ErrSymlinkEscape = errors.New("path resolves (through symlinks) outside the configured log roots")
	ErrNotRegular    = errors.New("path is not a regular file")
)

// rootSet is the list of directories file sources may read from.
type rootSet struct {
	roots []string // absolute, cleaned, as configured
}

func newRootSet(roots []string) rootSet {
	var rs rootSet
	for _, r := range roots {
		if r == "" || !filepath.IsAbs(r) {
			continue
		}
		rs.roots = append(rs.roots, filepath.Clean(r))
	}
	return rs
}

// validate is the Validate-time check: containment plus "not a directory".
func (rs rootSet) validate(p string) error {
	real, err := rs.check(p)
	if err != nil {
		return sdk.Invalid("path", "%v", err)
	}
	if fi, err := os.Stat(real); err == nil && !fi.Mode().IsRegular() {
		return sdk.Invalid("path", "%v (%s)", ErrNotRegular, fi.Mode().Type())
	}
	return nil
}

// check returns the real path of p (symlinks of its existing part
// resolved) if p lies under a root both lexically and once resolved.
func (rs rootSet) check(p string) (string, error) {
	if len(rs.roots) == 0 {
		return "", ErrNoRoots
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%w: %q", ErrRelativePath, p)
	}
	if slices.Contains(strings.Split(filepath.ToSlash(p), "/"), "..") {
		return "", fmt.Errorf("%w: %q", ErrDotDot, p)
	}
	clean := filepath.Clean(p)
	real, err := resolveExisting(clean)
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", p, err)
	}
	realRoots := rs.resolved()
	if !inside(clean, rs.roots) && !inside(clean, realRoots) {
		return "", fmt.Errorf("%w: %q", ErrOutsideRoots, p)
	}
	if !inside(real, realRoots) {
		return "", fmt.Errorf("%w: %q -> %q", ErrSymlinkEscape, p, real)
	}
	return real, nil
}

// resolved returns the roots with their symlinks resolved. It is computed
// per check because a root may be created (or re-pointed) after start;
// roots that do not exist contain nothing and are left out.
func (rs rootSet) resolved() []string {
	out := make([]string, 0, len(rs.roots))
	for _, r := range rs.roots {
		if real, err := filepath.EvalSymlinks(r); err == nil {
			out = append(out, real)
		}
	}
	return out
}

// resolveExisting resolves the symlinks of the longest existing prefix of
// p and appends the rest: a file that does not exist yet is judged by its
// existing parent.
func resolveExisting(p string) (string, error) {
	var rest []string
	cur := p
	for range 4096 {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			slices.Reverse(rest)
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = append(rest, filepath.Base(cur))
		cur = parent
	}
	return "", errors.New("path too deep")
}

// inside reports whether p is strictly below one of roots.
func inside(p string, roots []string) bool {
	for _, r := range roots {
		rel, err := filepath.Rel(r, p)
		if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// open opens p for reading after checking it, refusing anything but a
// regular file, and re-checks the opened descriptor's real path where the
// OS can tell it (closing the check-then-open race).
func (rs rootSet) open(p string) (*os.File, fileID, error) {
	real, err := rs.check(p)
	if err != nil {
		return nil, fileID{}, err
	}
	return rs.openReal(real)
}

// openReal opens a path that already passed check (or was found in a
// checked directory).
func (rs rootSet) openReal(real string) (*os.File, fileID, error) {
	f, err := os.OpenFile(real, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, fileID{}, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: %q", ErrNotRegular, real)
	}
	if err == nil {
		if fdReal, ok := openedPath(f); ok && !inside(fdReal, rs.resolved()) {
			err = fmt.Errorf("%w: %q opened %q", ErrSymlinkEscape, real, fdReal)
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fileID{}, err
	}
	return f, identityOf(fi), nil
}
