package pluginhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ManifestFile is the name of the manifest inside a plugin directory.
const ManifestFile = "manifest.json"

// Manifest lists the external plugins of a plugin directory:
//
//	{"plugins":[{"name":"x","path":"x-bin","sha256":"…","args":["--flag"],
//	  "env":["TZ","API_URL=https://example.test"]}]}
//
// A plugin starts with an environment of its own, not the sidecar's: env
// lists what it gets, "NAME=value" as written, a bare "NAME" with the
// sidecar's value of NAME (left out when the sidecar has none).
type Manifest struct {
	Plugins []ManifestEntry `json:"plugins"`
}

// ManifestEntry pins one plugin executable.
type ManifestEntry struct {
	Name string `json:"name"`
	// Path is relative to the plugin directory and must stay inside it.
	Path   string   `json:"path"`
	SHA256 string   `json:"sha256"`
	Args   []string `json:"args,omitempty"`
	Env    []string `json:"env,omitempty"`
}

// ErrManifest marks a manifest that cannot be used.
var ErrManifest = errors.New("invalid plugin manifest")

// LoadManifest reads dir/manifest.json into sources. Each binary's
// checksum is checked before every start (not here), so a mismatch fails
// that plugin only.
func LoadManifest(dir string) ([]Source, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir %s: %w", dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(root, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read plugin manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrManifest, ManifestFile, err)
	}
	out := make([]Source, 0, len(m.Plugins))
	seen := map[string]bool{}
	for i, e := range m.Plugins {
		src, err := e.source(root)
		if err != nil {
			return nil, fmt.Errorf("%w: plugins[%d]: %w", ErrManifest, i, err)
		}
		if seen[src.Name] {
			return nil, fmt.Errorf("%w: plugin %q listed twice", ErrManifest, src.Name)
		}
		seen[src.Name] = true
		out = append(out, src)
	}
	return out, nil
}

func (e ManifestEntry) source(root string) (Source, error) {
	switch {
	case e.Name == "":
		return Source{}, errors.New("name is required")
	case e.Path == "":
		return Source{}, fmt.Errorf("plugin %s: path is required", e.Name)
	case len(e.SHA256) != 64 || strings.Trim(strings.ToLower(e.SHA256), "0123456789abcdef") != "":
		return Source{}, fmt.Errorf("plugin %s: sha256 must be 64 hex digits", e.Name)
	case filepath.IsAbs(e.Path):
		return Source{}, fmt.Errorf("plugin %s: path %q must be relative to the plugin directory", e.Name, e.Path)
	}
	p := filepath.Join(root, e.Path)
	if rel, err := filepath.Rel(root, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return Source{}, fmt.Errorf("plugin %s: path %q leaves the plugin directory", e.Name, e.Path)
	}
	// A symlink could point outside the directory: resolve and recheck.
	if real, err := filepath.EvalSymlinks(p); err == nil {
		realRoot, _ := filepath.EvalSymlinks(root)
		if rel, err := filepath.Rel(realRoot, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return Source{}, fmt.Errorf("plugin %s: path %q resolves outside the plugin directory", e.Name, e.Path)
		}
	}
	env, err := e.environ()
	if err != nil {
		return Source{}, err
	}
	return Source{Name: e.Name, Cmd: append([]string{p}, e.Args...), SHA256: strings.ToLower(e.SHA256), Env: env}, nil
}

// environ resolves the entry's env list (see Manifest).
func (e ManifestEntry) environ() ([]string, error) {
	var out []string
	for i, v := range e.Env {
		name, _, literal := strings.Cut(v, "=")
		if name == "" || strings.ContainsAny(name, " \t\x00") {
			return nil, fmt.Errorf("plugin %s: env[%d] %q is not NAME or NAME=value", e.Name, i, v)
		}
		if literal {
			out = append(out, v)
		} else if val, ok := os.LookupEnv(name); ok {
			out = append(out, name+"="+val)
		}
	}
	return out, nil
}
