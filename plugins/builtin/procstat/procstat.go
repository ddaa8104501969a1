// Package procstat is the built-in "procstat" emitter: the CPU, memory,
// I/O and process count of a guest's processes at a configured interval,
// read from /proc (through github.com/prometheus/procfs) and, where the
// guest has a cgroup, from its cgroup files.
//
// Config: {"pid": 1234} (the process and its descendants) or
// {"cgroup": "/machine.slice/vm-a.scope"} (every process in it), plus
// "interval" (a Go duration, at least 100ms, default 1s). Each event has
// type "procstat"; its numeric fields are declared in the config schema
// under $defs.event, so clients can chart them.
package procstat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// Name is the kind this plugin serves.
const Name = "procstat"

// EventType is the type of every event.
const EventType = "procstat"

// Interval limits.
const (
	DefaultInterval = time.Second
	MinInterval     = 100 * time.Millisecond
)

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "procstat",
  "type": "object",
  "properties": {
    "pid": {"type": "integer", "minimum": 0, "description": "the guest's main process; it and its descendants are measured"},
    "cgroup": {"type": "string", "description": "the guest's cgroup path (as in /proc/PID/cgroup); every process in it is measured, and its cgroup files are read"},
    "interval": {"type": "string", "default": "1s", "description": "Go duration between samples, at least 100ms"}
  },
  "additionalProperties": false,
  "$defs": {
    "event": {
      "title": "procstat event data",
      "type": "object",
      "properties": {
        "processes": {"type": "integer", "description": "processes measured"},
        "threads": {"type": "integer", "description": "their threads"},
        "cpu_seconds": {"type": "number", "description": "user + system CPU time of the processes, seconds"},
        "cpu_percent": {"type": "number", "description": "CPU use since the previous sample, percent of one core"},
        "rss_bytes": {"type": "integer", "description": "resident memory, summed"},
        "read_bytes": {"type": "integer", "description": "bytes read from storage, summed (/proc/PID/io)"},
        "write_bytes": {"type": "integer", "description": "bytes written to storage, summed"},
        "cgroup_memory_bytes": {"type": "integer", "description": "memory charged to the cgroup (memory.current or memory.usage_in_bytes), when there is one"},
        "cgroup_cpu_seconds": {"type": "number", "description": "CPU time of the cgroup (cpu.stat usage_usec or cpuacct.usage), when there is one"}
      },
      "required": ["processes", "threads", "cpu_seconds", "cpu_percent", "rss_bytes", "read_bytes", "write_bytes"]
    }
  }
}`

// Config is the normalized config.
type Config struct {
	PID      int    `json:"pid,omitempty"`
	Cgroup   string `json:"cgroup,omitempty"`
	Interval string `json:"interval"`
}

// Plugin implements sdk.Plugin.
type Plugin struct {
	procRoot, cgroupRoot string
}

// New returns the procstat plugin over /proc and /sys/fs/cgroup.
func New() sdk.Plugin { return Plugin{procRoot: "/proc", cgroupRoot: "/sys/fs/cgroup"} }

// Describe implements sdk.Plugin.
func (Plugin) Describe() sdk.Description {
	return sdk.Description{
		Name:         Name,
		Version:      "1.0.0",
		Description:  "CPU, memory, I/O and process count of a guest's processes",
		ConfigSchema: json.RawMessage(schema),
		EventTypes:   []string{EventType},
	}
}

// Validate implements sdk.Plugin.
func (Plugin) Validate(_ context.Context, raw json.RawMessage) (json.RawMessage, error) {
	c, d, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	c.Interval = d.String()
	return json.Marshal(c)
}

func parseConfig(raw json.RawMessage) (Config, time.Duration, error) {
	var c Config
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, 0, sdk.Invalid("", "config must be an object: %v", err)
		}
	}
	if c.PID <= 0 && c.Cgroup == "" {
		return c, 0, sdk.Invalid("pid", "give pid (a process to measure with its descendants) or cgroup")
	}
	d := DefaultInterval
	if c.Interval != "" {
		var err error
		if d, err = time.ParseDuration(c.Interval); err != nil {
			return c, 0, sdk.Invalid("interval", "not a duration (use e.g. \"500ms\", \"1s\"): %q", c.Interval)
		}
	}
	if d < MinInterval {
		return c, 0, sdk.Invalid("interval", "must be at least %s, got %s", MinInterval, d)
	}
	return c, d, nil
}

// Run implements sdk.Plugin. Samples need no checkpoint.
func (p Plugin) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	c, d, err := parseConfig(inst.Config)
	if err != nil {
		return fmt.Errorf("procstat: %w", err)
	}
	s, err := newSampler(p.procRoot, p.cgroupRoot, c)
	if err != nil {
		return fmt.Errorf("procstat: %w", err)
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			data, err := json.Marshal(s.sample(now))
			if err != nil {
				return fmt.Errorf("procstat: %w", err)
			}
			if err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{{Type: EventType, Data: data, Time: now}}}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("procstat: emit: %w", err)
			}
		}
	}
}
