// Package magic is the built-in "magic" emitter: random int64 magic numbers
// at a configured rate (the seed prototype's GET /magic stream).
//
// Each event has type "magic" and data
//
//	{"magic":-2762725995429886737,"timestamp":"2026-11-23T17:00:00.123Z"}
//
// where timestamp is the generation time in UTC, RFC3339 with exactly
// three fractional digits: milliseconds, as the SSE prototype's stream
// had them (every event of a batch shares its tick's time, and ticks are
// at least 10ms apart, so finer digits told nothing).
//
// Config: {"rate": events per second} (default 1, > 0, at most 100000);
// the sidecar's shared /magic emitter runs at its magic_rate key (4).
// Events are sent in batches, one per tick of at least 10ms, so that
// 100,000 events/s cost about 100 boundary crossings per second.
package magic

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// Name is the kind this plugin serves.
const Name = "magic"

// EventType is the type of every event.
const EventType = "magic"

// Rate limits of the config.
const (
	DefaultRate = 1.0
	MaxRate     = 100000.0
)

// TimestampLayout formats an event's timestamp: RFC3339 in milliseconds.
const TimestampLayout = "2006-01-02T15:04:05.000Z07:00"

// minTick bounds the batching period: high rates share one batch per tick.
const minTick = 10 * time.Millisecond

// maxBacklog bounds how far behind schedule (in time) the emitter catches
// up after back-pressure; older due events are dropped, not burst.
const maxBacklog = 100 * time.Millisecond

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "magic",
  "type": "object",
  "properties": {
    "rate": {
      "type": "number",
      "exclusiveMinimum": 0,
      "maximum": 100000,
      "default": 1,
      "description": "events per second"
    }
  },
  "additionalProperties": false
}`

// Config is the normalized config.
type Config struct {
	Rate float64 `json:"rate"`
}

// Plugin implements sdk.Plugin.
type Plugin struct{}

// New returns the magic plugin.
func New() sdk.Plugin { return Plugin{} }

// Describe implements sdk.Plugin.
func (Plugin) Describe() sdk.Description {
	return sdk.Description{
		Name:         Name,
		Version:      "1.0.0",
		Description:  "random int64 magic numbers at a configured rate",
		ConfigSchema: json.RawMessage(schema),
		EventTypes:   []string{EventType},
	}
}

// Validate implements sdk.Plugin. It repeats the schema's checks so the
// plugin is safe when called without the SDK's schema validation.
func (Plugin) Validate(_ context.Context, config json.RawMessage) (json.RawMessage, error) {
	c, err := parseConfig(config)
	if err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func parseConfig(raw json.RawMessage) (Config, error) {
	var in struct {
		Rate *float64 `json:"rate"`
	}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &in); err != nil {
			return Config{}, sdk.Invalid("", "config must be an object: %v", err)
		}
	}
	c := Config{Rate: DefaultRate}
	if in.Rate != nil {
		c.Rate = *in.Rate
	}
	if !(c.Rate > 0) || c.Rate > MaxRate || math.IsInf(c.Rate, 0) {
		return Config{}, sdk.Invalid("rate", "must be > 0 and at most %g events per second", MaxRate)
	}
	return c, nil
}

// Run implements sdk.Plugin. Magic numbers have no state worth resuming,
// so batches carry no checkpoint.
func (Plugin) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	c, err := parseConfig(inst.Config)
	if err != nil {
		return fmt.Errorf("magic: %w", err)
	}
	tick := max(time.Duration(float64(time.Second)/c.Rate), minTick)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()

	p := pacer{rate: c.Rate, start: time.Now()}
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-ticker.C:
			n := p.due(now)
			if n == 0 {
				continue
			}
			if err := out.Emit(ctx, sdk.Batch{Events: makeEvents(rng, n, now)}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("magic: emit: %w", err)
			}
		}
	}
}

// pacer turns elapsed time into a count of due events, so fractional
// rates and ticker jitter average out exactly.
type pacer struct {
	rate    float64
	start   time.Time
	emitted int64
}

func (p *pacer) due(now time.Time) int {
	want := int64(now.Sub(p.start).Seconds() * p.rate)
	limit := max(1, int64(maxBacklog.Seconds()*p.rate))
	if want-p.emitted > limit {
		// Behind schedule (back-pressure): drop the backlog, keep the rate.
		p.emitted = want - limit
	}
	n := want - p.emitted
	p.emitted = want
	return int(n)
}

// makeEvents encodes n events into one shared buffer (one allocation for
// all payloads instead of one per event).
func makeEvents(rng *rand.Rand, n int, now time.Time) []sdk.Event {
	const maxLen = len(`{"magic":-9223372036854775808,"timestamp":"2006-01-02T15:04:05.999999999Z"}`)
	buf := make([]byte, 0, n*maxLen)
	events := make([]sdk.Event, n)
	// Every event of a batch shares the tick's timestamp: format it once.
	var tsBuf [64]byte
	ts := now.UTC().AppendFormat(tsBuf[:0], TimestampLayout)
	for i := range events {
		start := len(buf)
		buf = append(buf, `{"magic":`...)
		buf = strconv.AppendInt(buf, int64(rng.Uint64()), 10)
		buf = append(buf, `,"timestamp":"`...)
		buf = append(buf, ts...)
		buf = append(buf, `"}`...)
		events[i] = sdk.Event{Type: EventType, Data: buf[start:len(buf):len(buf)], Time: now}
	}
	return events
}
