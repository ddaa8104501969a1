package files

import (
	"os"
	"path/filepath"
	"strings"
)

// glob is filepath.Glob for absolute patterns, cheaper where it matters:
// a segment without glob characters costs one Lstat per candidate, not a
// directory read (filepath.Glob reads each guest's directory to find its
// one literal file name).
func glob(pattern string) []string {
	segs := strings.Split(filepath.Clean(pattern), string(filepath.Separator))
	paths := []string{string(filepath.Separator)}
	for _, seg := range segs[1:] {
		var next []string
		for _, dir := range paths {
			next = expandSeg(dir, seg, next)
		}
		if paths = next; len(paths) == 0 {
			break
		}
	}
	return paths
}

func expandSeg(dir, seg string, out []string) []string {
	if !strings.ContainsAny(seg, `*?[\`) {
		p := filepath.Join(dir, seg)
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
		return out
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if ok, _ := filepath.Match(seg, e.Name()); ok {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
