package wire

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hertz-contrib/sse"

	"github.com/sidestream/sidestream/core/event"
)

// SSEFrame returns e's Server-Sent Events frame, encoded once per event
// and shared by every subscriber. An event of the stream goes out on the
// default event type, with no event: field, so a browser's
// EventSource.onmessage (and every plain SSE client) receives it; only
// control markers (gap, offline, reset) are named, so a client that does not
// listen for them is not handed a marker as data.
func SSEFrame(e *event.Event) []byte { return e.SSE(EncodeSSE) }

// SSEFrameTyped returns e's frame with its type as the event: field, for
// the subscribers that asked for it (?event_types=1): they register a
// listener per type. Encoded once per event too, and only if one asks.
func SSEFrameTyped(e *event.Event) []byte { return e.SSETyped(EncodeSSETyped) }

// ssePool holds the buffers EncodeSSE encodes into (hertz-contrib/sse
// writes a field at a time to an io.Writer).
var ssePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// EncodeSSE encodes e as SSEFrame sends it: EncodeSSETyped's frame
// without the event field unless e is a control marker.
func EncodeSSE(e *event.Event) []byte {
	if e.IsControl() {
		return encodeSSE(e, e.Type)
	}
	return encodeSSE(e, "")
}

// EncodeSSETyped encodes e as one SSE event with hertz-contrib/sse:
// "id:SEQ\nevent:TYPE\ndata:DATA\n\n", each line of DATA a data field of
// its own so a payload can never end the event early. The event field is
// left out for an event without a type.
//
// The library writes "field:value" with no space, and a reader drops one
// space after the colon: a type that starts with a space gets one more
// here, and a data line that starts with one loses it, which in JSON is
// whitespace and changes no value.
func EncodeSSETyped(e *event.Event) []byte { return encodeSSE(e, e.Type) }

func encodeSSE(e *event.Event, typ string) []byte {
	buf := ssePool.Get().(*bytes.Buffer)
	buf.Reset()
	var id [20]byte
	if strings.HasPrefix(typ, " ") {
		typ = " " + typ
	}
	ev := sse.Event{ID: string(strconv.AppendUint(id[:0], e.Seq, 10)), Event: typ, Data: dropCR(e.Data)}
	_ = sse.Encode(buf, &ev) // a bytes.Buffer never fails
	out := bytes.Clone(buf.Bytes())
	ssePool.Put(buf)
	return out
}

// dropCR removes carriage returns from data. The library writes a CR as
// the two characters `\r`, which inside JSON whitespace would break the
// payload; SSE clients treat a CR as a line end anyway. Data is JSON,
// where a CR can only be whitespace, so dropping it keeps the value.
func dropCR(data []byte) []byte {
	if bytes.IndexByte(data, '\r') < 0 {
		return data
	}
	return bytes.ReplaceAll(data, []byte{'\r'}, nil)
}

// SSEHeartbeat is the comment sent while a stream is idle; writing it
// also finds clients that went away. The library has no comments.
var SSEHeartbeat = []byte(": hb\n\n")

// AppendSSERetry appends the "retry:" line that tells an EventSource how
// long to wait before reconnecting, as its own event block. It is not
// sent through the library, which adds a "data:" line to every event and
// so would make this an (empty) message.
func AppendSSERetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry:"...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, "\n\n"...)
}
