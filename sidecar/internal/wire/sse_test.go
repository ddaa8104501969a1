package wire_test

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// The typed frame names every type; the default frame names only control
// markers, so EventSource.onmessage receives the stream's events.
func TestEncodeSSE(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		e          *event.Event
		typed, def string
	}{
		{"compact", &event.Event{Seq: 42, Type: "tick", Data: []byte(`{"n":1}`)},
			"id:42\nevent:tick\ndata:{\"n\":1}\n\n", "id:42\ndata:{\"n\":1}\n\n"},
		{"multi-line data", &event.Event{Seq: 1, Type: "t", Data: []byte("{\n  \"a\": 1\n}")},
			"id:1\nevent:t\ndata:{\ndata:  \"a\": 1\ndata:}\n\n", "id:1\ndata:{\ndata:  \"a\": 1\ndata:}\n\n"},
		{"blank lines and CRLF in data", &event.Event{Seq: 2, Type: "t", Data: []byte("[1,\r\n\r\n2]")},
			"id:2\nevent:t\ndata:[1,\ndata:\ndata:2]\n\n", "id:2\ndata:[1,\ndata:\ndata:2]\n\n"},
		{"newlines in type", &event.Event{Seq: 3, Type: "a\nb\rc", Data: []byte(`1`)},
			"id:3\nevent:a\\nb\\rc\ndata:1\n\n", "id:3\ndata:1\n\n"},
		{"empty data", &event.Event{Seq: 4, Type: "t"}, "id:4\nevent:t\ndata:\n\n", "id:4\ndata:\n\n"},
		{"no type", &event.Event{Seq: 5, Data: []byte(`1`)}, "id:5\ndata:1\n\n", "id:5\ndata:1\n\n"},
		{"gap", event.Gap("s", 3, 9), "id:9\nevent:gap\ndata:{\"from\":3,\"to\":9}\n\n", "id:9\nevent:gap\ndata:{\"from\":3,\"to\":9}\n\n"},
		{"offline", event.Offline("s", 7, "node down"),
			"id:7\nevent:offline\ndata:{\"reason\":\"node down\"}\n\n", "id:7\nevent:offline\ndata:{\"reason\":\"node down\"}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(wire.SSEFrameTyped(tc.e)); got != tc.typed {
				t.Errorf("typed frame\n got %q\nwant %q", got, tc.typed)
			}
			if got := string(wire.SSEFrame(tc.e)); got != tc.def {
				t.Errorf("default frame\n got %q\nwant %q", got, tc.def)
			}
		})
	}
}

// Every subscriber gets the same bytes: the frame is encoded once.
func TestSSEFrameEncodedOnce(t *testing.T) {
	t.Parallel()
	e := &event.Event{Stream: "s", Seq: 1, Type: "t", Data: []byte(`{}`)}
	done := make(chan []byte, 8)
	for range 8 {
		go func() { done <- wire.SSEFrame(e) }()
	}
	first := <-done
	for range 7 {
		if got := <-done; &got[0] != &first[0] {
			t.Fatal("SSE frame encoded more than once")
		}
	}
}

func TestAppendSSERetry(t *testing.T) {
	t.Parallel()
	b := wire.AppendSSERetry(nil, 2500*time.Millisecond)
	d := wire.NewSSEDecoder(bytes.NewReader(append(b, wire.SSEHeartbeat...)), 0)
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("retry and heartbeat dispatched an event: %v", err)
	}
	if r, ok := d.Retry(); !ok || r != 2500*time.Millisecond || d.Comments() != 1 {
		t.Fatalf("retry %v %v, comments %d", r, ok, d.Comments())
	}
}

// What the server encodes, the client decodes to the same event: the
// seq as id, the type (one line), the data without its CRs.
func FuzzSSERoundTrip(f *testing.F) {
	f.Add(uint64(1), "tick", []byte(`{"n":1}`))
	f.Add(uint64(0), "a\nb", []byte("{\n\"a\":\r\n[1,\n\n2]}"))
	f.Add(uint64(1<<64-1), "\r", []byte(`"\n"`))
	f.Add(uint64(9), "", []byte("not json\n\n"))
	f.Fuzz(func(t *testing.T, seq uint64, typ string, data []byte) {
		frame := wire.SSEFrameTyped(&event.Event{Seq: seq, Type: typ, Data: data})
		if !bytes.HasSuffix(frame, []byte("\n\n")) || bytes.Contains(frame[:len(frame)-2], []byte("\n\n")) ||
			bytes.IndexByte(frame, '\r') >= 0 {
			t.Fatalf("frame ends early or holds a CR: %q", frame)
		}
		d := wire.NewSSEDecoder(bytes.NewReader(frame), len(frame)+1)
		got, err := d.Next()
		if err != nil {
			t.Fatalf("decode %q: %v", frame, err)
		}
		wantType := strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(typ)
		if wantType == "" {
			wantType = "message"
		}
		// A data line's first space is the reader's to drop (EncodeSSE).
		lines := bytes.Split(bytes.ReplaceAll(data, []byte{'\r'}, nil), []byte{'\n'})
		for i, l := range lines {
			lines[i] = bytes.TrimPrefix(l, []byte{' '})
		}
		wantData := bytes.Join(lines, []byte{'\n'})
		if string(got.ID) != strconv.FormatUint(seq, 10) || string(got.Event) != wantType || !bytes.Equal(got.Data, wantData) {
			t.Fatalf("frame %q decodes to id %q event %q data %q", frame, got.ID, got.Event, got.Data)
		}
		if _, err := d.Next(); err != io.EOF {
			t.Fatalf("one frame, more than one event: %v", err)
		}
	})
}

var benchData = []byte(`{"line":"2024-05-06T07:08:09Z INFO request served path=/api/v1/emitters status=200 dur=1.2ms","file":"/var/log/app.log"}`)

// BenchmarkEncodeSSE encodes one event's frame (once per event, however
// many subscribers), as core/stream's BenchmarkEncodeSSE did for the
// hand-written encoder this replaced.
func BenchmarkEncodeSSE(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchData)))
	for b.Loop() {
		e := &event.Event{Stream: "emitter-1", Seq: 123456, Type: "log.line",
			Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Data: benchData}
		if len(wire.SSEFrame(e)) == 0 {
			b.Fatal("empty frame")
		}
	}
}
