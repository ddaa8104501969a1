package thin_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/sidecar/internal/thin"
)

// batch is what one Next returned at a moment of the test's clock.
type batch struct {
	at   time.Duration // since the subscriber started
	seqs []uint64      // data events; 0 stands for a gap marker of seq 0..0
}

func events(seqs []uint64) []*event.Event {
	evs := make([]*event.Event, len(seqs))
	for i, s := range seqs {
		if s == 0 {
			evs[i] = event.Gap("s", 100, 200)
			continue
		}
		evs[i] = &event.Event{Stream: "s", Seq: s, Type: "tick", Data: []byte(`{}`)}
	}
	return evs
}

// show renders delivered events as "3" and markers as "skip(4-9:6)".
func show(evs []*event.Event) string {
	var parts []string
	for _, e := range evs {
		switch e.Type {
		case event.TypeSkipped:
			parts = append(parts, fmt.Sprintf("skip@%d%s", e.Seq, e.Data))
		case event.TypeGap:
			parts = append(parts, "gap")
		default:
			parts = append(parts, fmt.Sprint(e.Seq))
		}
	}
	return strings.Join(parts, " ")
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestThin(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name    string
		rate    uint64
		batches []batch
		want    string
	}{
		{"slow stream passes whole", 10, []batch{{0, []uint64{1}}, {100 * ms, []uint64{2}}, {300 * ms, []uint64{3}}},
			"1 2 3"},
		{"a burst keeps its first event", 10, []batch{{0, seqRange(1, 5)}},
			"1"},
		{"the marker precedes the next delivered event", 10, []batch{{0, seqRange(1, 5)}, {100 * ms, []uint64{6}}},
			`1 skip@1{"skipped":4,"from":2,"to":5} 6`},
		{"one event per 1/N s of a fast stream", 10,
			[]batch{{0, []uint64{1}}, {25 * ms, []uint64{2}}, {50 * ms, []uint64{3}}, {75 * ms, []uint64{4}}, {100 * ms, []uint64{5}},
				{125 * ms, []uint64{6}}, {200 * ms, []uint64{7}}},
			`1 skip@1{"skipped":3,"from":2,"to":4} 5 skip@5{"skipped":1,"from":6,"to":6} 7`},
		{"control markers pass and report first", 10, []batch{{0, []uint64{1, 2, 3, 0, 201}}},
			`1 skip@1{"skipped":2,"from":2,"to":3} gap`},
		{"seqs not offered are not counted", 10, []batch{{0, []uint64{1, 3, 7}}, {100 * ms, []uint64{9}}},
			`1 skip@2{"skipped":2,"from":3,"to":7} 9`},
		{"a burst of a tenth of the rate passes, then one per 1/N s", 30,
			[]batch{{0, seqRange(1, 5)}, {10 * ms, []uint64{6}}, {34 * ms, []uint64{7}}, {40 * ms, []uint64{8}}},
			`1 2 3 skip@3{"skipped":3,"from":4,"to":6} 7`},
		{"the largest rate passes a microsecond stream", thin.MaxRate,
			[]batch{{0, []uint64{1}}, {time.Microsecond, []uint64{2}}, {2 * time.Microsecond, []uint64{3}}},
			"1 2 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Unix(1_000_000, 0)
			th := thin.New(tt.rate)
			var out []*event.Event
			for _, b := range tt.batches {
				out = th.Thin(start.Add(b.at), out, events(b.seqs))
			}
			if got := show(out); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestThinAccountsForEverySeq: whatever the rate and arrival pattern,
// delivered events plus the markers' counts cover every seq offered once.
func TestThinAccountsForEverySeq(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rate  uint64
		batch uint64 // events per batch, batches at 1000/batch a second
	}{{1, 1}, {7, 1}, {100, 1}, {999, 1}, {10, 10}, {200, 10}, {990, 10}, {300, 100}} {
		rate := tt.rate
		th := thin.New(rate)
		start := time.Unix(0, 0)
		var out []*event.Event
		const n = 5000 // 5 s of a stream of 1000 events a second
		for seq := uint64(1); seq <= n; seq += tt.batch {
			at := start.Add(time.Duration(seq+tt.batch-1) * time.Millisecond)
			out = th.Thin(at, out, events(seqRange(seq, seq+tt.batch-1)))
		}
		out = th.Flush(out)
		var accounted uint64
		delivered := 0
		next := uint64(1)
		for _, e := range out {
			if e.Type == event.TypeSkipped {
				var from, to, k uint64
				if _, err := fmt.Sscanf(string(e.Data), `{"skipped":%d,"from":%d,"to":%d}`, &k, &from, &to); err != nil {
					t.Fatal(err)
				}
				if from != next || k != to-from+1 || e.Seq != from-1 {
					t.Fatalf("rate %d: marker %s at seq %d, expected from %d", rate, e.Data, e.Seq, next)
				}
				accounted += k
				next = to + 1
				continue
			}
			if e.Seq != next {
				t.Fatalf("rate %d: delivered %d, expected %d", rate, e.Seq, next)
			}
			delivered++
			accounted++
			next++
		}
		if accounted != n {
			t.Fatalf("rate %d: %d of %d seqs accounted for", rate, accounted, n)
		}
		// 5 s of stream: 5*rate events plus the full bucket at most, and
		// batches do not cost more than the bucket: at least 97% of the rate.
		most, least := min(5*int(rate)+thin.Burst(rate), n), 5*int(rate)*97/100
		if delivered > most || delivered < least {
			t.Fatalf("rate %d, batches of %d: delivered %d, want %d..%d", rate, tt.batch, delivered, least, most)
		}
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	start := time.Unix(0, 0)
	th := thin.New(4) // a token every 250 ms
	if d := th.Due(start); d != 0 || th.Pending() {
		t.Fatalf("nothing pending: due %v", d)
	}
	th.Thin(start, nil, events([]uint64{1, 2}))
	if !th.Pending() {
		t.Fatal("seq 2 left out but nothing pending")
	}
	if d := th.Due(start.Add(100 * time.Millisecond)); d < 149*time.Millisecond || d > 150*time.Millisecond {
		t.Fatalf("due %v after 100ms, want 150ms", d)
	}
	if d := th.Due(start.Add(300 * time.Millisecond)); d != 0 {
		t.Fatalf("due %v once a token is back", d)
	}
	if got := show(th.Flush(nil)); got != `skip@1{"skipped":1,"from":2,"to":2}` || th.Pending() {
		t.Fatalf("flush: %s", got)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v  uint64
		ok bool
	}{{0, false}, {1, true}, {thin.MaxRate, true}, {thin.MaxRate + 1, false}, {1 << 63, false}} {
		if err := thin.Check(tt.v); (err == nil) != tt.ok || (err != nil && !errors.Is(err, thin.ErrRate)) {
			t.Errorf("Check(%d) = %v", tt.v, err)
		}
	}
}
