// Package timeplugin is the built-in "time" emitter: the current time at a
// configured interval (the seed prototype's GET /time stream). It lives in
// plugins/builtin/time but is named timeplugin so it does not shadow the
// standard library's time package in importers.
//
// Each event has type "time" and data
//
//	{"time":"2026-11-23T17:00:00.123456789Z","unix_ms":1795453200123}
//
// with time in UTC, RFC3339Nano. Config: {"interval":"1s"} (a Go duration,
// at least 10ms, default 1s); the normalized form is Go's canonical
// duration string ("1000ms" becomes "1s").
package timeplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// Name is the kind this plugin serves.
const Name = "time"

// EventType is the type of every event.
const EventType = "time"

// Interval limits of the config.
const (
	DefaultInterval = time.Second
	MinInterval     = 10 * time.Millisecond
)

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "time",
  "type": "object",
  "properties": {
    "interval": {
      "type": "string",
      "default": "1s",
      "description": "Go duration between events, at least 10ms (e.g. \"500ms\", \"1s\", \"1m\")"
    }
  },
  "additionalProperties": false
}`

// Config is the normalized config.
type Config struct {
	Interval string `json:"interval"`
}

// Plugin implements sdk.Plugin.
type Plugin struct{}

// New returns the time plugin.
func New() sdk.Plugin { return Plugin{} }

// Describe implements sdk.Plugin.
func (Plugin) Describe() sdk.Description {
	return sdk.Description{
		Name:         Name,
		Version:      "1.0.0",
		Description:  "the current time at a configured interval",
		ConfigSchema: json.RawMessage(schema),
		EventTypes:   []string{EventType},
	}
}

// Validate implements sdk.Plugin.
func (Plugin) Validate(_ context.Context, config json.RawMessage) (json.RawMessage, error) {
	d, err := parseConfig(config)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Config{Interval: d.String()})
}

func parseConfig(raw json.RawMessage) (time.Duration, error) {
	var in struct {
		Interval *string `json:"interval"`
	}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &in); err != nil {
			return 0, sdk.Invalid("", "config must be an object: %v", err)
		}
	}
	if in.Interval == nil {
		return DefaultInterval, nil
	}
	d, err := time.ParseDuration(*in.Interval)
	if err != nil {
		return 0, sdk.Invalid("interval", "not a duration (use e.g. \"500ms\", \"1s\"): %q", *in.Interval)
	}
	if d < MinInterval {
		return 0, sdk.Invalid("interval", "must be at least %s, got %s", MinInterval, d)
	}
	return d, nil
}

// Run implements sdk.Plugin. The current time needs no checkpoint.
func (Plugin) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	d, err := parseConfig(inst.Config)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	ticker := time.NewTicker(d)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-ticker.C:
			ev := sdk.Event{Type: EventType, Data: encode(now), Time: now}
			if err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{ev}}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("time: emit: %w", err)
			}
		}
	}
}

func encode(now time.Time) json.RawMessage {
	b := make([]byte, 0, 72)
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","unix_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	return append(b, '}')
}
