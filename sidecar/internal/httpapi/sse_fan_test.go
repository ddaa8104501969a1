package httpapi

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

// SSE subscribers share a few writer goroutines (shards). One whose client
// stopped reading must not hold its shard: the others on it receive every
// event while its write waits; once its client reads again it receives
// everything too, in order, nothing lost.
func TestSSEStuckSubscriberDoesNotHoldItsWriterShard(t *testing.T) {
	e := newEnv(t, Options{HeartbeatInterval: time.Hour, WriteTimeout: time.Minute, SSEWriters: 1})
	// Its rest waits in a write: the shard handed it back. The system's
	// receive buffer, since a 4 KiB one would drain 24 MiB at a crawl.
	stuck := stuckSSEClientBuf(t, e, 0, 24)
	st, err := e.ems.Stream(context.Background(), "time")
	if err != nil {
		t.Fatal(err)
	}
	head := st.Head()
	from := fmt.Sprint(head)
	readers := make([]*sseReader, 3)
	for i := range readers {
		readers[i] = e.openSSE("/api/v1/streams/time/sse?after=" + from)
	}
	const rounds, per = 20, 10
	for r := range rounds {
		drafts := make([]event.Draft, per)
		for j := range drafts {
			drafts[j] = event.Draft{Type: "tick", Data: []byte(fmt.Sprint(r*per + j))}
		}
		if _, err := st.Publish(context.Background(), drafts, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, rd := range readers {
		for seq := head + 1; seq <= head+rounds*per; seq++ {
			if f := rd.nextEvent(t); f.id != fmt.Sprint(seq) {
				t.Fatalf("reader %d: event %+v, want id %d", i, f, seq)
			}
		}
	}
	stillStuck := false
	for _, g := range goroutineStacks(t) {
		if strings.Contains(g, "(*FanSSE).") && strings.Contains(g, "(*rawChunked).writev(") && strings.Contains(g, "IO wait") {
			stillStuck = true
		}
	}
	if !stillStuck {
		t.Fatal("the stuck subscriber's write no longer waits: the test proves nothing")
	}

	// The stuck client reads again: every event, in order, to the last.
	_ = stuck.SetReadDeadline(time.Now().Add(time.Minute))
	got := readIDs(t, stuck, head+rounds*per)
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("the stuck subscriber got id %d after %d", got[i], got[i-1])
		}
	}
}

// readIDs reads SSE ids from a raw chunked response until last.
func readIDs(t *testing.T, r io.Reader, last uint64) []uint64 {
	t.Helper()
	var ids []uint64
	buf := make([]byte, 64<<10)
	var pending string
	for {
		n, err := r.Read(buf)
		pending += string(buf[:n])
		for {
			i := strings.Index(pending, "\nid:")
			if i < 0 {
				break
			}
			j := strings.IndexByte(pending[i+4:], '\n')
			if j < 0 {
				break
			}
			var id uint64
			if _, serr := fmt.Sscan(pending[i+4:i+4+j], &id); serr != nil {
				t.Fatalf("id line %q: %v", pending[i+4:i+4+j], serr)
			}
			ids = append(ids, id)
			pending = pending[i+4+j:]
			if id == last {
				return ids
			}
		}
		if err != nil {
			for _, g := range goroutineStacks(t) {
				if strings.Contains(g, "FanSSE") || strings.Contains(g, "shard") {
					t.Log(g)
				}
			}
			t.Fatalf("read after %d ids: %v", len(ids), err)
		}
	}
}
