package guest

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Placeholder marks the guest's name in a path pattern.
const Placeholder = "{guest}"

// Pattern is a path pattern with one {guest} placeholder, e.g.
// /var/log/guests/{guest}/console.log. {guest} matches a non-empty part
// of one path segment; the rest follows filepath.Match (*, ?, [..]).
type Pattern struct {
	raw  string
	glob string
	re   *regexp.Regexp
}

// ParsePattern checks p: it must hold {guest} exactly once and be a valid
// glob otherwise.
func ParsePattern(p string) (Pattern, error) {
	if n := strings.Count(p, Placeholder); n != 1 {
		return Pattern{}, fmt.Errorf("pattern %q must contain %s exactly once", p, Placeholder)
	}
	glob := strings.Replace(p, Placeholder, "*", 1)
	if _, err := filepath.Match(glob, ""); err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w", p, err)
	}
	before, after, _ := strings.Cut(p, Placeholder)
	expr, err := globRegexp(before)
	if err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w", p, err)
	}
	rest, err := globRegexp(after)
	if err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w", p, err)
	}
	re, err := regexp.Compile("^" + expr + "([^/]+?)" + rest + "$")
	if err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w", p, err)
	}
	return Pattern{raw: p, glob: glob, re: re}, nil
}

// String is the pattern as written.
func (p Pattern) String() string { return p.raw }

// Glob is the pattern with {guest} as *, for filepath.Glob.
func (p Pattern) Glob() string { return p.glob }

// Match returns the guest's name if path matches the pattern.
func (p Pattern) Match(path string) (string, bool) {
	m := p.re.FindStringSubmatch(path)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Dirs are the directory patterns whose entries can make a match: the
// directory holding {guest} and each one below it on the way to the
// pattern's file, as globs (what a watcher must watch).
func (p Pattern) Dirs() []string {
	segs := strings.Split(p.glob, "/")
	at := 0
	for i, s := range strings.Split(p.raw, "/") {
		if strings.Contains(s, Placeholder) {
			at = i
		}
	}
	var out []string
	for i := at; i < len(segs); i++ {
		d := strings.Join(segs[:i], "/")
		if d == "" {
			d = "/"
		}
		out = append(out, d)
	}
	return out
}

var errBadGlob = errors.New("unterminated [ in pattern")

// globRegexp translates a filepath.Match pattern to a regexp.
func globRegexp(g string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(g[i:], ']')
			if j < 0 {
				return "", errBadGlob
			}
			class := g[i+1 : i+j]
			if strings.HasPrefix(class, "^") {
				class = `\^` + class[1:]
			}
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case '\\':
			if i+1 < len(g) {
				i++
				b.WriteString(regexp.QuoteMeta(string(g[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String(), nil
}
