package apiclient

import (
	"bytes"
	"io"
	"time"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// SSEEvent is one dispatched Server-Sent Event.
type SSEEvent struct {
	// ID is the last event ID after this event (it carries over from
	// earlier events when this one has no id: field, as in EventSource).
	ID string
	// Event is the event type ("message" when none was given).
	Event string
	// Data is the data fields joined with "\n".
	Data []byte
}

// ErrSSETooLarge is returned for a line or event beyond the decoder's limit.
var ErrSSETooLarge = wire.ErrSSETooLarge

// DefaultMaxSSEEvent bounds one event (all its lines) by default.
const DefaultMaxSSEEvent = wire.DefaultMaxSSEEvent

// SSEDecoder reads events from a text/event-stream as the WHATWG
// EventSource parser does (the product's one SSE parser, in
// sidecar/internal/wire); the events it returns are the caller's to keep.
type SSEDecoder struct{ d *wire.SSEDecoder }

// NewSSEDecoder returns a decoder of r bounding each event to max bytes
// (0: DefaultMaxSSEEvent).
func NewSSEDecoder(r io.Reader, max int) *SSEDecoder {
	return &SSEDecoder{d: wire.NewSSEDecoder(r, max)}
}

// Retry returns the last reconnection delay the stream sent (ok false if none).
func (d *SSEDecoder) Retry() (time.Duration, bool) { return d.d.Retry() }

// Comments returns how many comment lines (heartbeats) were read.
func (d *SSEDecoder) Comments() int { return d.d.Comments() }

// Next returns the next event. At the end of the stream it returns io.EOF
// (an unterminated last event is dropped, as EventSource does) or the
// reader's error.
func (d *SSEDecoder) Next() (SSEEvent, error) {
	ev, err := d.d.Next()
	if err != nil {
		return SSEEvent{}, err
	}
	return SSEEvent{ID: string(ev.ID), Event: string(ev.Event), Data: bytes.Clone(ev.Data)}, nil
}
