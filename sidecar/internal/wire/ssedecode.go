package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// SSEEvent is one dispatched Server-Sent Event. Its slices are the
// decoder's and are valid until the next call to Next.
type SSEEvent struct {
	// ID is the last event ID after this event (it carries over from
	// earlier events when this one has no id: field, as in EventSource).
	ID []byte
	// Event is the event type ("message" when none was given).
	Event []byte
	// Data is the data fields joined with "\n".
	Data []byte
}

// ErrSSETooLarge is returned for a line or event beyond the decoder's limit.
var ErrSSETooLarge = errors.New("sse: event too large")

// DefaultMaxSSEEvent bounds one event (all its lines) by default.
const DefaultMaxSSEEvent = 4 << 20

// sseReadBuffer is the decoder's read buffer unless the caller brings one.
const sseReadBuffer = 16 << 10

var messageType = []byte("message")

// SSEDecoder reads events from a text/event-stream as the WHATWG
// EventSource parser does: lines end with LF, CRLF or CR; comments and
// unknown fields are skipped; data fields accumulate; a blank line
// dispatches; an id with NUL is ignored; retry takes digits only.
//
// It is written here rather than taken from hertz-contrib/sse, whose
// reader only splits the stream into blocks, searching the buffered bytes
// for five separators per event (4x slower on a fan-out stream before
// any field is parsed: BENCHMARKS.md, "wire formats"), whose parser drops
// empty data lines, and whose client needs the Hertz HTTP client. This
// one reads in place, so a load generator decodes a million events a
// second without allocating per event.
type SSEDecoder struct {
	r       *bufio.Reader
	max     int
	started bool
	skipLF  bool // the previous line ended with CR: a following LF is part of it
	resume  bool // d.line holds the start of a line a reader error cut

	line      []byte
	data      []byte
	hasData   bool
	event     []byte
	lastID    []byte
	retry     time.Duration
	retrySeen bool
	comments  int
}

// NewSSEDecoder returns a decoder of r bounding each event to max bytes
// (0: DefaultMaxSSEEvent). A *bufio.Reader of 16 KiB or more is read
// directly; any other reader gets such a buffer.
func NewSSEDecoder(r io.Reader, max int) *SSEDecoder {
	if max <= 0 {
		max = DefaultMaxSSEEvent
	}
	return &SSEDecoder{r: bufio.NewReaderSize(r, sseReadBuffer), max: max}
}

// NewSSEDecoderBuffered decodes br as it is, whatever its size: a caller
// with many connections chooses its buffers.
func NewSSEDecoderBuffered(br *bufio.Reader, max int) *SSEDecoder {
	d := NewSSEDecoder(nil, max)
	d.r = br
	return d
}

// Retry returns the last reconnection delay the stream sent (ok false if none).
func (d *SSEDecoder) Retry() (time.Duration, bool) { return d.retry, d.retrySeen }

// Comments returns how many comment lines (heartbeats) were read.
func (d *SSEDecoder) Comments() int { return d.comments }

// Buffered returns how many bytes are read from the source and not yet
// decoded: when none, the next event needs a read.
func (d *SSEDecoder) Buffered() int { return d.r.Buffered() }

// Next returns the next event. At the end of the stream it returns io.EOF
// (an unterminated last event is dropped, as EventSource does) or the
// reader's error. After an error other than the end (a non-blocking
// reader's "nothing yet"), Next may be called again: it resumes where
// it stopped, the event and line read so far kept.
func (d *SSEDecoder) Next() (SSEEvent, error) {
	for {
		line, err := d.readLine()
		if err != nil {
			return SSEEvent{}, err
		}
		if len(line) == 0 {
			if ev, ok := d.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := d.field(line); err != nil {
			return SSEEvent{}, err
		}
	}
}

// dispatch ends the event being read; an event without data is not one.
func (d *SSEDecoder) dispatch() (SSEEvent, bool) {
	ev := SSEEvent{ID: d.lastID, Event: d.event, Data: d.data}
	ok := d.hasData
	d.data, d.hasData, d.event = d.data[:0], false, d.event[:0]
	if len(ev.Event) == 0 {
		ev.Event = messageType
	}
	return ev, ok
}

func (d *SSEDecoder) field(line []byte) error {
	if line[0] == ':' {
		d.comments++
		return nil
	}
	name, value, found := bytes.Cut(line, []byte{':'})
	if found && len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "data":
		if d.hasData {
			d.data = append(d.data, '\n')
		}
		if len(d.data)+len(value) > d.max {
			return fmt.Errorf("%w (more than %d bytes)", ErrSSETooLarge, d.max)
		}
		d.data = append(d.data, value...)
		d.hasData = true
	case "event":
		d.event = append(d.event[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.lastID = append(d.lastID[:0], value...)
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			d.retry, d.retrySeen = time.Duration(ms)*time.Millisecond, true
		}
	}
	return nil
}

// parseDigits reads a non-empty run of ASCII digits that fits a delay.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// readLine returns the next line without its terminator. The returned
// slice is valid until the next call. It scans bufio's buffer in place
// (Peek + Discard) so a lone CR ends a line without waiting for the next
// byte.
func (d *SSEDecoder) readLine() ([]byte, error) {
	if !d.resume {
		d.line = d.line[:0]
	}
	d.resume = false
	for {
		if d.r.Buffered() == 0 {
			if _, err := d.r.Peek(1); err != nil {
				if errors.Is(err, io.EOF) && len(d.line) > 0 {
					return nil, io.ErrUnexpectedEOF
				}
				d.resume = len(d.line) > 0 // the line goes on after a retry
				return nil, err
			}
		}
		buf, _ := d.r.Peek(d.r.Buffered())
		if d.skipLF {
			d.skipLF = false
			if buf[0] == '\n' {
				_, _ = d.r.Discard(1)
				continue
			}
		}
		i := indexEOL(buf)
		if i < 0 {
			d.line = append(d.line, buf...)
			_, _ = d.r.Discard(len(buf))
			if len(d.line) > d.max {
				return nil, fmt.Errorf("%w (a line over %d bytes)", ErrSSETooLarge, d.max)
			}
			continue
		}
		line := buf[:i]
		if len(d.line) > 0 {
			d.line = append(d.line, line...)
			line = d.line
		}
		// Otherwise the line is returned from bufio's buffer in place:
		// Discard does not refill it, and the caller is done with the
		// line before the next read.
		d.skipLF = buf[i] == '\r'
		_, _ = d.r.Discard(i + 1)
		if len(line) > d.max {
			return nil, fmt.Errorf("%w (a line over %d bytes)", ErrSSETooLarge, d.max)
		}
		if !d.started {
			d.started = true
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		return line, nil
	}
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}
