package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sidestream/sidestream/core/emitter"
)

// Errors of installing and removing plugins.
var (
	// ErrNameTaken means the plugin's name is already in the manifest, is
	// a built-in kind, or its file name is taken in the plugin directory.
	ErrNameTaken = errors.New("plugin name already taken")
	// ErrNotInstalled means the manifest does not list the named plugin.
	ErrNotInstalled = errors.New("no such plugin in the manifest")
	// ErrNotPlugin means a binary did not start as a sidestream plugin.
	ErrNotPlugin = errors.New("not a working sidestream plugin")
)

// Probe starts the plugin of src once, the way the host would (checksum,
// handshake, protocol version, Describe), and returns the kind with the
// name the plugin reports for itself. The process is killed before Probe
// returns.
func Probe(ctx context.Context, src Source, timeout time.Duration) (emitter.Kind, error) {
	if err := VerifyChecksum(src); err != nil {
		return emitter.Kind{}, err
	}
	h, err := New(Config{Sources: []Source{src}, StartTimeout: timeout, CrashLimit: 1, ReadyWait: timeout}, slog.New(slog.DiscardHandler))
	if err != nil {
		return emitter.Kind{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = h.Close(cctx)
	}()
	dctx, cancel := context.WithTimeout(ctx, timeout+time.Second)
	defer cancel()
	kind, err := h.kinds[src.Name].describe(dctx)
	if err != nil {
		// The start error (handshake, version, crash) says more than the
		// timeout or unavailability Describe saw.
		if last := h.kinds[src.Name].lastError(); last != nil {
			return emitter.Kind{}, last
		}
		return emitter.Kind{}, err
	}
	k := h.kinds[src.Name]
	k.mu.Lock()
	kind.Name = k.described
	k.mu.Unlock()
	return kind, nil
}

// ReadManifest reads dir/manifest.json as it is written; a directory
// without one has an empty manifest.
func ReadManifest(dir string) (Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{Plugins: []ManifestEntry{}}, nil
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("read plugin manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %s: %w", ErrManifest, ManifestFile, err)
	}
	return m, nil
}

// WriteManifest replaces dir/manifest.json in one rename, so a sidecar
// starting meanwhile reads the old manifest or the new one, never half.
func WriteManifest(dir string, m Manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ManifestFile), append(raw, '\n'), 0o644)
}

// AddRequest says what Add installs.
type AddRequest struct {
	// Dir is the plugin directory (created if missing).
	Dir string
	// Binary is the plugin executable to copy in.
	Binary string
	// Reserved are names that may not be used (the built-in kinds).
	Reserved []string
	// Timeout bounds the plugin's start.
	Timeout time.Duration
}

// Add copies a plugin binary into the plugin directory, checks that the
// copy starts and completes the handshake, and lists it in the manifest
// under the name it reports, pinned by its sha256. Nothing is left behind
// when any step fails. A running sidecar picks it up when restarted.
func Add(ctx context.Context, req AddRequest) (ManifestEntry, emitter.Kind, error) {
	fi, err := os.Stat(req.Binary)
	if err != nil {
		return ManifestEntry{}, emitter.Kind{}, fmt.Errorf("plugin binary: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return ManifestEntry{}, emitter.Kind{}, fmt.Errorf("plugin binary %s: not a regular file", req.Binary)
	}
	if err := os.MkdirAll(req.Dir, 0o755); err != nil {
		return ManifestEntry{}, emitter.Kind{}, fmt.Errorf("plugin dir: %w", err)
	}
	m, err := ReadManifest(req.Dir)
	if err != nil {
		return ManifestEntry{}, emitter.Kind{}, err
	}
	tmp, sum, err := copyIn(req.Dir, req.Binary)
	if err != nil {
		return ManifestEntry{}, emitter.Kind{}, err
	}
	defer os.Remove(tmp) // a no-op once renamed into place
	abs, err := filepath.Abs(tmp)
	if err != nil {
		return ManifestEntry{}, emitter.Kind{}, err
	}
	kind, err := Probe(ctx, Source{Name: filepath.Base(req.Binary), Cmd: []string{abs}, SHA256: sum}, req.Timeout)
	if err != nil {
		return ManifestEntry{}, emitter.Kind{}, fmt.Errorf("%s: %w: %w", req.Binary, ErrNotPlugin, err)
	}
	e := ManifestEntry{Name: kind.Name, Path: kind.Name, SHA256: sum}
	if err := checkFree(req.Dir, m, e, req.Reserved); err != nil {
		return ManifestEntry{}, emitter.Kind{}, err
	}
	final := filepath.Join(req.Dir, e.Path)
	if err := os.Rename(tmp, final); err != nil {
		return ManifestEntry{}, emitter.Kind{}, fmt.Errorf("install plugin %s: %w", e.Name, err)
	}
	m.Plugins = append(m.Plugins, e)
	if err := WriteManifest(req.Dir, m); err != nil {
		os.Remove(final)
		return ManifestEntry{}, emitter.Kind{}, err
	}
	return e, kind, nil
}

// checkFree refuses a name (or file) that is already in use.
func checkFree(dir string, m Manifest, e ManifestEntry, reserved []string) error {
	if e.Name == "" || e.Name != filepath.Base(e.Name) || strings.HasPrefix(e.Name, ".") || e.Name == ManifestFile {
		return fmt.Errorf("%w: the plugin reports the name %q, which cannot be a file name in the plugin directory", ErrNotPlugin, e.Name)
	}
	if slices.Contains(reserved, e.Name) {
		return fmt.Errorf("%w: %q is a built-in kind", ErrNameTaken, e.Name)
	}
	for _, have := range m.Plugins {
		if have.Name == e.Name {
			return fmt.Errorf("%w: %q is already installed (sha256 %s); run `sidestream plugins remove %s` first", ErrNameTaken, e.Name, have.SHA256, e.Name)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, e.Path)); err == nil {
		return fmt.Errorf("%w: a file named %q is already in %s", ErrNameTaken, e.Path, dir)
	}
	return nil
}

// copyIn copies src into a hidden temporary file of dir and returns its
// path and sha256. The hash is of the copy, which is what will run.
func copyIn(dir, src string) (string, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", fmt.Errorf("plugin binary: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".add-*")
	if err != nil {
		return "", "", fmt.Errorf("plugin dir: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	return out.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// Remove takes the named plugin out of the manifest and deletes its
// binary unless another entry still uses it.
func Remove(dir, name string) (ManifestEntry, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return ManifestEntry{}, err
	}
	i := slices.IndexFunc(m.Plugins, func(e ManifestEntry) bool { return e.Name == name })
	if i < 0 {
		names := make([]string, 0, len(m.Plugins))
		for _, e := range m.Plugins {
			names = append(names, e.Name)
		}
		return ManifestEntry{}, fmt.Errorf("%w: %q is not in %s (installed: %s)", ErrNotInstalled, name, filepath.Join(dir, ManifestFile), strings.Join(names, ", "))
	}
	e := m.Plugins[i]
	m.Plugins = slices.Delete(m.Plugins, i, i+1)
	if err := WriteManifest(dir, m); err != nil {
		return ManifestEntry{}, err
	}
	if slices.ContainsFunc(m.Plugins, func(o ManifestEntry) bool { return filepath.Clean(o.Path) == filepath.Clean(e.Path) }) {
		return e, nil
	}
	if _, err := e.source(mustAbs(dir)); err != nil {
		return e, nil // a path outside the directory is never deleted
	}
	if err := os.Remove(filepath.Join(dir, e.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return e, fmt.Errorf("plugin %s removed from the manifest, but its binary stays: %w", name, err)
	}
	return e, nil
}

func mustAbs(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
