// Package logplugin is the built-in "log" emitter: it streams guest log
// lines, either from a synthetic generator (the default, for demos and load
// tests) or by tailing a real file under one of the configured log roots.
//
// File tailing follows appends, survives rename+create and copytruncate
// rotation, and checkpoints the file identity (device + inode) and the
// offset of the next unread byte with every batch, so a restarted instance
// resumes with every line exactly once. Only files under the roots named
// in SIDESTREAM_LOG_ROOTS are ever opened: relative paths, ".." and
// symlinks that resolve outside the roots are refused, at Validate and
// again at every open.
//
// Limits, by design: a line longer than MaxLineBytes is split into pieces;
// an unterminated last line waits for its newline (except in a file that
// was rotated away, where it is emitted as the file's last line). If the
// file was rotated more than once while the instance was stopped, only the
// checkpointed file and the current one are read (intermediate files are
// skipped). Copytruncate is detected by the file shrinking below the read
// position, so a file truncated and refilled past that position between
// two polls is not noticed.
package logplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// RootsEnv is the environment variable the host sets for the plugin
// process: the allowed log roots, separated by os.PathListSeparator.
const RootsEnv = "SIDESTREAM_LOG_ROOTS"

// EventType is the type of every event this plugin emits.
const EventType = "log"

const defaultPoll = 150 * time.Millisecond

// Options configures a Plugin built with NewWithOptions.
type Options struct {
	// Roots are the directories file sources may read from. Relative
	// entries are ignored. No roots means file sources are refused.
	Roots []string
	// Logger receives warnings (rotated file lost while stopped, file
	// truncated). Nil discards them.
	Logger *slog.Logger
	// PollInterval is how often a tailed file is checked for appends and
	// rotation (default 150ms).
	PollInterval time.Duration
}

// Plugin implements sdk.Plugin for the log emitter kind. It is immutable
// and safe for many concurrent instances.
type Plugin struct {
	roots rootSet
	log   *slog.Logger
	poll  time.Duration
}

var _ sdk.Plugin = (*Plugin)(nil)

// New builds the plugin for a plugin process: roots come from RootsEnv and
// warnings go to stderr as JSON (the host forwards plugin stderr).
func New() sdk.Plugin {
	return NewWithOptions(Options{
		Roots:  filepath.SplitList(os.Getenv(RootsEnv)),
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
}

// NewWithRoots builds the plugin with explicit roots (tests, embedding).
func NewWithRoots(roots []string) sdk.Plugin {
	return NewWithOptions(Options{Roots: roots})
}

// NewWithOptions builds the plugin from opts.
func NewWithOptions(opts Options) sdk.Plugin {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = defaultPoll
	}
	return &Plugin{roots: newRootSet(opts.Roots), log: logger, poll: poll}
}

// Describe implements sdk.Plugin.
func (p *Plugin) Describe() sdk.Description {
	return sdk.Description{
		Name:    "log",
		Version: "1.0.0",
		Description: "Guest log lines: a synthetic generator (default) or a rotation-safe " +
			"tail of a file under the configured log roots.",
		ConfigSchema: json.RawMessage(configSchema),
		EventTypes:   []string{EventType},
	}
}

// Validate implements sdk.Plugin. It fills defaults and, for file
// sources, checks the path against the roots (symlinks resolved).
func (p *Plugin) Validate(_ context.Context, config json.RawMessage) (json.RawMessage, error) {
	c, err := p.parse(config)
	if err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func (p *Plugin) parse(config json.RawMessage) (cfg, error) {
	c, ve := parseConfig(config)
	if ve != nil {
		return cfg{}, ve
	}
	if c.Source == sourceFile {
		if err := p.roots.validate(c.Path); err != nil {
			return cfg{}, err
		}
	}
	return c, nil
}

// Run implements sdk.Plugin: it emits until ctx is done and returns nil
// then; any other return is a failure the host restarts from the last
// durable checkpoint.
func (p *Plugin) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	// Path containment is checked at every open, where it yields the
	// sentinel errors (ErrSymlinkEscape, ...) rather than field errors.
	c, ve := parseConfig(inst.Config)
	if ve != nil {
		return fmt.Errorf("log %s: %w", inst.ID, ve)
	}
	var err error
	switch c.Source {
	case sourceFile:
		err = p.runFile(ctx, c, inst, out)
	default:
		err = p.runSynthetic(ctx, c, inst, out)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("log %s: %w", inst.ID, err)
	}
	return nil
}
