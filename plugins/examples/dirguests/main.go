// Command dirguests is an example guest-source plugin: every directory
// directly under a configured directory is a guest, named after it. It
// stands in for the real ones (libvirt domains, containerd tasks, kubelet
// pods) to show the shape: describe a config schema, validate, and report
// the whole set of guests each time it may have changed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

type config struct {
	Dir        string            `json:"dir"`
	IntervalMS int               `json:"interval_ms,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

type dirGuests struct{}

func (dirGuests) DescribeGuestSource() sdk.GuestSourceDescription {
	return sdk.GuestSourceDescription{
		Name:        "dirguests",
		Version:     "1.0.0",
		Description: "every directory under dir is a guest",
		ConfigSchema: json.RawMessage(`{
			"type": "object",
			"properties": {
				"dir": {"type": "string", "minLength": 1},
				"interval_ms": {"type": "integer", "minimum": 10},
				"labels": {"type": "object", "additionalProperties": {"type": "string"}}
			},
			"required": ["dir"],
			"additionalProperties": false
		}`),
	}
}

// ValidateGuestSource makes the directory absolute and the default
// interval explicit.
func (dirGuests) ValidateGuestSource(_ context.Context, raw json.RawMessage) (json.RawMessage, error) {
	var c config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, sdk.Invalid("", "%v", err)
	}
	if !filepath.IsAbs(c.Dir) {
		return nil, sdk.Invalid("dir", "%q must be an absolute path", c.Dir)
	}
	if c.IntervalMS == 0 {
		c.IntervalMS = 200
	}
	return json.Marshal(c)
}

// WatchGuests polls the directory and reports when the set changed (and
// once at the start). A directory that cannot be read reports no guests
// rather than failing: it may be created later.
func (dirGuests) WatchGuests(ctx context.Context, raw json.RawMessage, report func([]sdk.Guest) error) error {
	var c config
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tick := time.NewTicker(time.Duration(max(c.IntervalMS, 10)) * time.Millisecond)
	defer tick.Stop()
	var last []string
	for first := true; ; first = false {
		names := scan(c.Dir)
		if first || !slices.Equal(names, last) {
			if err := report(guests(c, names)); err != nil {
				return err
			}
			last = names
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// scan lists the directories under dir, sorted.
func scan(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func guests(c config, names []string) []sdk.Guest {
	out := make([]sdk.Guest, len(names))
	for i, n := range names {
		out[i] = sdk.Guest{Name: n, Path: filepath.Join(c.Dir, n), Labels: maps.Clone(c.Labels)}
	}
	return out
}

func main() { sdk.ServeGuestSource(dirGuests{}) }
