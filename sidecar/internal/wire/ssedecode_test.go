package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hertz-contrib/sse"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// ev is a decoded event, copied out of the decoder's buffers.
type ev struct {
	ID, Event string
	Data      []byte
}

func decodeAll(t testing.TB, r io.Reader) ([]ev, error) {
	t.Helper()
	d := wire.NewSSEDecoder(r, 1<<10)
	var out []ev
	for i := 0; i < 10000; i++ {
		e, err := d.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev{string(e.ID), string(e.Event), bytes.Clone(e.Data)})
	}
	t.Fatal("more than 10000 events")
	return nil, nil
}

func TestSSEDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []ev
		wantErr  error
	}{
		{"one event", "id: 1\nevent: log\ndata: {}\n\n", []ev{{"1", "log", []byte("{}")}}, io.EOF},
		{"multi-line data", "data: a\ndata:b\ndata\n\n", []ev{{"", "message", []byte("a\nb\n")}}, io.EOF},
		{"CRLF", "id: 7\r\nevent: x\r\ndata: y\r\n\r\n", []ev{{"7", "x", []byte("y")}}, io.EOF},
		{"CR only", "id: 7\revent: x\rdata: y\r\r", []ev{{"7", "x", []byte("y")}}, io.EOF},
		{"comments and retry", ": hb\n\nretry: 10\n\n: x\ndata: 1\n\n", []ev{{"", "message", []byte("1")}}, io.EOF},
		{"id carries over", "id: 5\ndata: a\n\ndata: b\n\n", []ev{{"5", "message", []byte("a")}, {"5", "message", []byte("b")}}, io.EOF},
		{"id with NUL ignored", "id: 5\ndata: a\n\nid: 6\x00\ndata: b\n\n", []ev{{"5", "message", []byte("a")}, {"5", "message", []byte("b")}}, io.EOF},
		{"no data no event", "id: 3\nevent: x\n\ndata: z\n\n", []ev{{"3", "message", []byte("z")}}, io.EOF},
		{"one leading space only", "data:  two\n\n", []ev{{"", "message", []byte(" two")}}, io.EOF},
		{"unknown field", "foo: bar\ndata: 1\n\n", []ev{{"", "message", []byte("1")}}, io.EOF},
		{"BOM", "\uFEFFdata: 1\n\n", []ev{{"", "message", []byte("1")}}, io.EOF},
		{"unterminated last event", "data: 1\n\ndata: 2\n", []ev{{"", "message", []byte("1")}}, io.EOF},
		{"cut mid-line", "data: 1\n\ndata: 2", []ev{{"", "message", []byte("1")}}, io.ErrUnexpectedEOF},
		{"too large", "data: " + strings.Repeat("x", 2000) + "\n\n", nil, wire.ErrSSETooLarge},
		{"too large in lines", strings.Repeat("data: "+strings.Repeat("x", 100)+"\n", 20) + "\n", nil, wire.ErrSSETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got, err := decodeAll(t, r)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
					t.Fatalf("events %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestSSEDecoderRetry(t *testing.T) {
	t.Parallel()
	d := wire.NewSSEDecoder(strings.NewReader("retry: 1500\n\nretry: 2x\n\nretry:\n\n"), 0)
	if _, err := d.Next(); err != io.EOF {
		t.Fatal(err)
	}
	if r, ok := d.Retry(); !ok || r != 1500*time.Millisecond {
		t.Fatalf("retry %v %v, want 1.5s (invalid values ignored)", r, ok)
	}
}

// A lone CR ends the line at once: the decoder must not wait for the
// next byte to see whether an LF follows (the server may send nothing
// more for a long time).
func TestSSEDecoderCRDoesNotWait(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() { _, _ = pw.Write([]byte("data: 1\r\r")) }()
	d := wire.NewSSEDecoder(pr, 0)
	got := make(chan []byte, 1)
	go func() {
		e, err := d.Next()
		if err == nil {
			got <- bytes.Clone(e.Data)
		}
		close(got)
	}()
	select {
	case data := <-got:
		if string(data) != "1" {
			t.Fatalf("event %q", data)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("decoder waited for a byte after CR")
	}
	pw.Close()
}

// encodeSSE writes events as a server would, one id per event.
func encodeSSE(evs []ev) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		fmt.Fprintf(&b, "id: %s\nevent: %s\n", e.ID, e.Event)
		for _, line := range strings.Split(string(e.Data), "\n") {
			fmt.Fprintf(&b, "data: %s\n", line)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func FuzzSSEDecoder(f *testing.F) {
	for _, s := range []string{
		"id: 1\nevent: log\ndata: {}\n\n", "data: a\r\ndata: b\r\n\r\n", ": hb\n\nretry: 5\n\n",
		"data: 1\r\r\n\n", "\uFEFFid: 2\rdata\r\r", "event: gap\nid: 9\ndata: {\"from\":3,\"to\":9}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, err1 := decodeAll(t, bytes.NewReader(in))
		split, err2 := decodeAll(t, iotest.OneByteReader(bytes.NewReader(in)))
		if fmt.Sprintf("%q %v", whole, err1) != fmt.Sprintf("%q %v", split, err2) {
			t.Fatalf("chunking changed the result:\n%q %v\n%q %v", whole, err1, split, err2)
		}
		if err1 != nil && err1 != io.EOF && err1 != io.ErrUnexpectedEOF && !errors.Is(err1, wire.ErrSSETooLarge) {
			t.Fatalf("unexpected error %v", err1)
		}
		// What was decoded re-encodes to the same events.
		var ok []ev
		for _, e := range whole {
			if !strings.ContainsAny(e.ID, "\r\n") && !strings.ContainsAny(e.Event, "\r\n") {
				ok = append(ok, e)
			}
		}
		again, err := decodeAll(t, bytes.NewReader(encodeSSE(ok)))
		if err != io.EOF && !errors.Is(err, wire.ErrSSETooLarge) {
			t.Fatalf("re-decode: %v", err)
		}
		if err == io.EOF && fmt.Sprintf("%q", again) != fmt.Sprintf("%q", ok) {
			t.Fatalf("round trip:\n%q\n%q", ok, again)
		}
	})
}

// benchStream is a fan-out stream as the server writes it: 1000 events.
var benchStream = bytes.Repeat([]byte("id:123456\nevent:log\ndata:{\"line\":123456,\"level\":\"info\",\"msg\":\"guest vm-17 booted service 42\"}\n\n"), 1000)

// BenchmarkSSEDecoder reads benchStream through a 4 KiB buffer, as the
// load generator does.
func BenchmarkSSEDecoder(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchStream)))
	for b.Loop() {
		d := wire.NewSSEDecoderBuffered(bufio.NewReaderSize(bytes.NewReader(benchStream), 4<<10), 0)
		n := 0
		for {
			if _, err := d.Next(); err != nil {
				break
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("%d events", n)
		}
	}
}

// BenchmarkSSEHertzContribReader is the library's client reader on the
// same stream with the same buffer: it only splits the blocks (fields
// are left to the caller), the lower bound of what it would cost. The
// decision to keep SSEDecoder rests on this pair.
func BenchmarkSSEHertzContribReader(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchStream)))
	ctx := context.Background()
	for b.Loop() {
		r := sse.NewEventStreamReader(bufio.NewReaderSize(bytes.NewReader(benchStream), 4<<10), 4<<10)
		n := 0
		for {
			if _, err := r.ReadEvent(ctx); err != nil {
				break
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("%d events", n)
		}
	}
}

// errNotYet is a non-blocking source's "nothing to read yet".
var errNotYet = errors.New("not yet")

// trickle hands out one byte a read, every other read failing with
// errNotYet.
type trickle struct {
	b    []byte
	miss bool
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.miss = !r.miss; r.miss {
		return 0, errNotYet
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

// A decoder called again after its reader's temporary error resumes the
// line and event it was in: every event arrives whole, however the
// stream is cut (a poller decodes each connection as its bytes come).
func TestSSEDecoderResumes(t *testing.T) {
	t.Parallel()
	src := &trickle{b: []byte("id: 1\ndata: {\"a\":1}\r\n\r\n: hb\n\nid: 22\nevent: gap\ndata: x\ndata: y\n\n")}
	dec := wire.NewSSEDecoder(src, 0)
	var got []string
	for range 1000 {
		ev, err := dec.Next()
		if errors.Is(err, errNotYet) {
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		got = append(got, fmt.Sprintf("%s|%s|%s", ev.ID, ev.Event, ev.Data))
	}
	want := []string{"1|message|{\"a\":1}", "22|gap|x\ny"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
