package api

import (
	"encoding/json"
	"time"
)

// TypeGap is the type of a gap marker: the seqs From..To (its Data,
// {"from":A,"to":B}) were not delivered because the server no longer
// keeps them.
const TypeGap = "gap"

// TypeReset is the type of a reset marker: the stream keeps no history
// and started over (its process restarted) at seq Start (its Data,
// {"start":N}); nothing between the subscriber's position and Start
// exists. Its Seq is Start-1.
const TypeReset = "reset"

// TypeSkipped is the type of a skipped marker, sent to a subscriber that
// asked for ?max_rate=N: Skipped events of seqs From..To (its Data,
// {"skipped":K,"from":A,"to":B}) were left out to keep to N a second. It
// comes before the next event delivered; its Seq is From-1, so resuming
// from it continues after the last event delivered.
const TypeSkipped = "skipped"

// Event is one event of a stream as REST pages and WebSocket frames
// carry it (the envelope). Over SSE, only Seq (the id: field), Type (the
// event: field, empty for data events) and Data travel; a client that
// reads SSE leaves Stream and Time zero, and a zero Time is left out when
// encoded (the server always sets it).
type Event struct {
	Stream string          `json:"stream"`
	Seq    uint64          `json:"seq"`
	Type   string          `json:"type"`
	Time   time.Time       `json:"time,omitzero"`
	Data   json.RawMessage `json:"data"`
}

// IsGap reports whether e is a gap marker.
func (e Event) IsGap() bool { return e.Type == TypeGap }

// GapRange returns the missing seqs of a gap marker (inclusive).
func (e Event) GapRange() (from, to uint64, ok bool) {
	if !e.IsGap() {
		return 0, 0, false
	}
	var g Gap
	if json.Unmarshal(e.Data, &g) != nil {
		return 0, 0, false
	}
	return g.From, g.To, true
}

// IsReset reports whether e is a reset marker.
func (e Event) IsReset() bool { return e.Type == TypeReset }

// ResetStart returns the seq a reset marker says the stream continues at.
func (e Event) ResetStart() (start uint64, ok bool) {
	if !e.IsReset() {
		return 0, false
	}
	var r Reset
	if json.Unmarshal(e.Data, &r) != nil {
		return 0, false
	}
	return r.Start, true
}

// IsSkipped reports whether e is a skipped marker.
func (e Event) IsSkipped() bool { return e.Type == TypeSkipped }

// SkippedRange returns what a skipped marker says was left out.
func (e Event) SkippedRange() (s Skipped, ok bool) {
	if !e.IsSkipped() || json.Unmarshal(e.Data, &s) != nil {
		return Skipped{}, false
	}
	return s, true
}

// Skipped is the Data of a skipped marker: Skipped events of the seqs
// From..To (inclusive) were not sent.
type Skipped struct {
	Skipped uint64 `json:"skipped"`
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
}

// Reset is the Data of a reset marker.
type Reset struct {
	Start uint64 `json:"start"`
}

// Gap is the Data of a gap marker.
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// EventPage is one page of GET /api/v1/streams/{stream}/events: events
// after a seq, oldest first. Next is the after of the following page;
// Head is the stream's newest seq.
type EventPage struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"`
	Head   uint64  `json:"head"`
}

// LogPage is one page of GET /log/{id}: the newest events before a
// cursor, oldest first. Prev, when not zero, is the before of the page
// of older events.
type LogPage struct {
	Events []Event `json:"events"`
	Prev   uint64  `json:"prev,omitempty"`
}

// Seq is the answer of a publish (POST /track/{user}): the seq the event
// got, durable once answered.
type Seq struct {
	Seq uint64 `json:"seq"`
}
