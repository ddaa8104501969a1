package logplugin

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

const (
	// maxBatchLines bounds the events of one batch (both sources).
	maxBatchLines = 1000
	minTick       = 10 * time.Millisecond
	maxTick       = 250 * time.Millisecond
)

// generator produces synthetic guest log lines at a steady rate. Lines
// are due by wall-clock time since start; each tick emits what is due in
// batches of at most maxBatchLines, so 100k lines/s costs ~100 batches/s.
type generator struct {
	rate   float64
	levels []string
	guest  []byte // JSON-encoded once
	line   uint64 // last line number emitted
	rng    *rand.Rand
	cum    []int // cumulative weights of levels
}

func (p *Plugin) runSynthetic(ctx context.Context, c cfg, inst sdk.Instance, out sdk.Output) error {
	cp, _, err := decodeLineCheckpoint(inst.Checkpoint)
	if err != nil {
		return err
	}
	guest := c.Guest
	if guest == "" {
		guest = inst.ID
	}
	g := newGenerator(c.Rate, c.Levels, guest, cp.Line, uint64(time.Now().UnixNano()))
	return g.run(ctx, out)
}

func newGenerator(rate float64, levels []string, guest string, line, seed uint64) *generator {
	g := &generator{
		rate:   rate,
		levels: levels,
		guest:  appendJSONString(nil, []byte(guest)),
		line:   line,
		rng:    rand.New(rand.NewPCG(seed, line)),
	}
	total := 0
	for _, l := range levels {
		total += levelWeight[l]
		g.cum = append(g.cum, total)
	}
	return g
}

// tick is one period of the generator: about one line per tick at low
// rates, bounded so high rates stay cheap and low rates stay responsive.
func (g *generator) tick() time.Duration {
	return min(max(time.Duration(float64(time.Second)/g.rate), minTick), maxTick)
}

func (g *generator) run(ctx context.Context, out sdk.Output) error {
	start := time.Now()
	var produced int64 // lines due-and-handled since start (incl. skipped)
	backlogCap := max(int64(g.rate), maxBatchLines)
	t := time.NewTicker(g.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			due := int64(g.rate*now.Sub(start).Seconds()) - produced
			if due > backlogCap {
				// The host held us back (back-pressure) for over a second:
				// skip the time, never the line numbers.
				produced += due - backlogCap
				due = backlogCap
			}
			for due > 0 {
				n := min(due, maxBatchLines)
				b := g.batch(start, produced, int(n))
				if err := out.Emit(ctx, b); err != nil {
					return fmt.Errorf("emit: %w", err)
				}
				produced += n
				due -= n
			}
		}
	}
}

// batch builds n lines; the k-th line since start is stamped start+k/rate
// so timestamps are evenly spaced and never in the future.
func (g *generator) batch(start time.Time, produced int64, n int) sdk.Batch {
	events := make([]sdk.Event, n)
	var msg []byte
	for i := range events {
		ts := start.Add(time.Duration(float64(produced+int64(i)+1) / g.rate * float64(time.Second))).UTC()
		level := g.level()
		msg = appendMessage(msg[:0], g.rng, level)
		g.line++
		d := make([]byte, 0, len(msg)+len(g.guest)+96)
		d = append(d, `{"timestamp":"`...)
		d = ts.AppendFormat(d, time.RFC3339Nano)
		d = append(d, `","level":"`...)
		d = append(d, level...)
		d = append(d, `","message":`...)
		d = appendJSONString(d, msg)
		d = append(d, `,"guest":`...)
		d = append(d, g.guest...)
		d = append(d, `,"line":`...)
		d = strconv.AppendUint(d, g.line, 10)
		d = append(d, '}')
		events[i] = sdk.Event{Type: EventType, Data: d, Time: ts}
	}
	return sdk.Batch{Events: events, Checkpoint: lineCheckpoint{Line: g.line}.encode()}
}

// level picks a configured level by weight.
func (g *generator) level() string {
	x := g.rng.IntN(g.cum[len(g.cum)-1])
	for i, c := range g.cum {
		if x < c {
			return g.levels[i]
		}
	}
	return g.levels[len(g.levels)-1]
}
