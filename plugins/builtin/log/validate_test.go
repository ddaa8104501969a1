package logplugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidestream/sidestream/plugins/sdk"
)

func TestValidateSynthetic(t *testing.T) {
	t.Parallel()
	p := NewWithRoots(nil)
	tests := []struct {
		name, config, want string // want "" means invalid
		badField           string
	}{
		{name: "empty", config: ``, want: `{"source":"synthetic","rate":10,"levels":["INFO","WARN","ERROR","DEBUG"]}`},
		{name: "null", config: `null`, want: `{"source":"synthetic","rate":10,"levels":["INFO","WARN","ERROR","DEBUG"]}`},
		{name: "object", config: `{}`, want: `{"source":"synthetic","rate":10,"levels":["INFO","WARN","ERROR","DEBUG"]}`},
		{name: "full", config: `{"source":"synthetic","rate":2.5,"levels":["ERROR"],"guest":"vm-17"}`,
			want: `{"source":"synthetic","rate":2.5,"levels":["ERROR"],"guest":"vm-17"}`},
		{name: "zero rate", config: `{"rate":0}`, badField: "rate"},
		{name: "negative rate", config: `{"rate":-1}`, badField: "rate"},
		{name: "rate too high", config: `{"rate":100001}`, badField: "rate"},
		{name: "max rate", config: `{"rate":100000}`, want: `{"source":"synthetic","rate":100000,"levels":["INFO","WARN","ERROR","DEBUG"]}`},
		{name: "unknown level", config: `{"levels":["INFO","TRACE"]}`, badField: "levels[1]"},
		{name: "duplicate level", config: `{"levels":["INFO","INFO"]}`, badField: "levels[1]"},
		{name: "no levels", config: `{"levels":[]}`, badField: "levels"},
		{name: "path on synthetic", config: `{"path":"/var/log/x"}`, badField: "path"},
		{name: "unknown source", config: `{"source":"socket"}`, badField: "source"},
		{name: "rate on file", config: `{"source":"file","path":"/x/y","rate":3}`, badField: "rate"},
		{name: "file without path", config: `{"source":"file"}`, badField: "path"},
		{name: "unknown field", config: `{"colour":"red"}`, badField: ""},
		{name: "not an object", config: `[1]`, badField: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Validate(context.Background(), json.RawMessage(tc.config))
			if tc.want == "" { // invalid: expect an error on badField
				assertFieldError(t, err, tc.badField)
				return
			}
			if err != nil {
				t.Fatalf("Validate(%s): %v", tc.config, err)
			}
			if string(got) != tc.want {
				t.Fatalf("Validate(%s) = %s, want %s", tc.config, got, tc.want)
			}
			again, err := p.Validate(context.Background(), got)
			if err != nil || string(again) != string(got) {
				t.Fatalf("normalized config is not stable: %s -> %s, %v", got, again, err)
			}
		})
	}
}

func assertFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var ve *sdk.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want *sdk.ValidationError on %q", err, field)
	}
	for _, f := range ve.Fields {
		if f.Field == field {
			return
		}
	}
	t.Fatalf("got field errors %+v, want one on %q", ve.Fields, field)
}

func fileConfig(path string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"source": "file", "path": path})
	return b
}

func TestValidateFilePathSecurity(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "vm-17"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "vm-17", "console.log"), []byte("x\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s\n"), 0o644))
	// A directory symlink inside the root that leads out of it, and a
	// file symlink that does the same.
	must(t, os.Symlink(outside, filepath.Join(root, "escape")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "vm-17", "link.log")))
	// A symlink that stays inside is fine.
	must(t, os.Symlink(filepath.Join(root, "vm-17", "console.log"), filepath.Join(root, "vm-17", "inside.log")))
	p := NewWithRoots([]string{root})

	tests := []struct {
		name, path string
		wantErr    error
	}{
		{"existing file", filepath.Join(root, "vm-17", "console.log"), nil},
		{"missing file in missing dir", filepath.Join(root, "vm-99", "console.log"), nil},
		{"symlink inside roots", filepath.Join(root, "vm-17", "inside.log"), nil},
		{"relative", "vm-17/console.log", ErrRelativePath},
		{"dot relative", "./vm-17/console.log", ErrRelativePath},
		{"dotdot escape", root + "/vm-17/../../" + filepath.Base(outside) + "/secret", ErrDotDot},
		{"dotdot staying inside", root + "/vm-17/../vm-17/console.log", ErrDotDot},
		{"outside roots", filepath.Join(outside, "secret"), ErrOutsideRoots},
		{"root itself", root, ErrOutsideRoots},
		{"prefix sibling", root + "-other/console.log", ErrOutsideRoots},
		{"etc passwd", "/etc/passwd", ErrOutsideRoots},
		{"dir symlink escape", filepath.Join(root, "escape", "secret"), ErrSymlinkEscape},
		{"dir symlink escape missing file", filepath.Join(root, "escape", "later.log"), ErrSymlinkEscape},
		{"file symlink escape", filepath.Join(root, "vm-17", "link.log"), ErrSymlinkEscape},
		{"directory", filepath.Join(root, "vm-17"), ErrNotRegular},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := p.Validate(context.Background(), fileConfig(tc.path))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate(%s): %v", tc.path, err)
				}
				return
			}
			assertFieldError(t, err, "path")
			if !strings.Contains(err.Error(), tc.wantErr.Error()) {
				t.Fatalf("Validate(%s) = %v, want message %q", tc.path, err, tc.wantErr)
			}
		})
	}
}

func TestValidateFileWithoutRootsIsRefused(t *testing.T) {
	t.Parallel()
	for _, roots := range [][]string{nil, {}, {"relative/dir"}, {""}} {
		_, err := NewWithRoots(roots).Validate(context.Background(), fileConfig("/var/log/guests/vm-17/console.log"))
		assertFieldError(t, err, "path")
		if !strings.Contains(err.Error(), RootsEnv) {
			t.Fatalf("roots %q: %v does not say how to configure roots", roots, err)
		}
	}
}

func TestNewReadsRootsFromEnv(t *testing.T) {
	root := t.TempDir()
	t.Setenv(RootsEnv, "/nonexistent-root"+string(os.PathListSeparator)+root)
	p := New()
	if _, err := p.Validate(context.Background(), fileConfig(filepath.Join(root, "a.log"))); err != nil {
		t.Fatalf("path under the second env root: %v", err)
	}
	_, err := p.Validate(context.Background(), fileConfig("/tmp/elsewhere.log"))
	assertFieldError(t, err, "path")
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d := NewWithRoots(nil).Describe()
	if d.Name != "log" || len(d.EventTypes) != 1 || d.EventTypes[0] != EventType {
		t.Fatalf("Describe = %+v", d)
	}
	var schema map[string]any
	if err := json.Unmarshal(d.ConfigSchema, &schema); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
