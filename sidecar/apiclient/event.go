package apiclient

import (
	"encoding/json"
	"time"
)

// TypeGap is the type of a gap marker: the seqs From..To were not
// delivered because the server no longer keeps them.
const TypeGap = "gap"

// Event is one event of a stream, as REST pages and WebSocket frames carry
// it. Over SSE, Time is zero: SSE frames carry only seq, type and data.
type Event struct {
	Stream string          `json:"stream"`
	Seq    uint64          `json:"seq"`
	Type   string          `json:"type"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data"`
}

// IsGap reports whether e is a gap marker.
func (e Event) IsGap() bool { return e.Type == TypeGap }

// GapRange returns the missing seqs of a gap marker (inclusive).
func (e Event) GapRange() (from, to uint64, ok bool) {
	if !e.IsGap() {
		return 0, 0, false
	}
	var g gapData
	if json.Unmarshal(e.Data, &g) != nil {
		return 0, 0, false
	}
	return g.From, g.To, true
}

type gapData struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}
