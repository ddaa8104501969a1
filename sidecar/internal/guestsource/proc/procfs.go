package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// pids lists the numeric entries of a /proc root.
func pids(root string) ([]int, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}

// alive reports whether pid runs: its /proc entry exists and it is not a
// zombie (a killed child its parent has not waited for yet is gone for
// us). A fixture root without a stat file counts as alive.
func alive(root string, pid int) bool {
	dir := filepath.Join(root, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		_, serr := os.Stat(dir)
		return serr == nil && os.IsNotExist(err)
	}
	// The state follows the command name, which may hold ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}
