package streamhttp

import (
	"encoding/json"

	"github.com/sidestream/sidestream/core/event"
)

// Observer is told what one subscriber's writer did; telemetry implements
// it per stream kind and transport. Calls come from the writer goroutine.
type Observer interface {
	// Wrote reports one coalesced write: events delivered (gap markers
	// excluded) and bytes.
	Wrote(events, bytes int)
	// Gap reports a gap marker sent for missed events the subscriber will
	// never receive.
	Gap(missed uint64)
	// Skipped reports a skipped marker sent for events left out to keep
	// to the subscriber's ?max_rate.
	Skipped(n uint64)
}

// observe reports a write of evs taking n bytes to o (nil: nothing).
func observe(o Observer, evs []*event.Event, n int) {
	if o == nil {
		return
	}
	delivered := len(evs)
	for _, e := range evs {
		if e.IsControl() {
			// A marker (gap, offline) is not a delivered event.
			delivered--
		}
		if e.IsGap() {
			o.Gap(gapSize(e))
		}
		if e.Type == event.TypeSkipped {
			o.Skipped(skippedCount(e))
		}
	}
	o.Wrote(delivered, n)
}

func gapSize(e *event.Event) uint64 {
	var g struct{ From, To uint64 }
	if json.Unmarshal(e.Data, &g) != nil || g.To < g.From {
		return 0
	}
	return g.To - g.From + 1
}

func skippedCount(e *event.Event) uint64 {
	var s struct{ Skipped uint64 }
	if json.Unmarshal(e.Data, &s) != nil {
		return 0
	}
	return s.Skipped
}
