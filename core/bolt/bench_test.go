package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// benchPayload is ~200 bytes of JSON.
var benchPayload = json.RawMessage(`{"line":"` + string(bytes.Repeat([]byte("x"), 180)) + `","n":1}`)

// BenchmarkCommit measures durable (fsync) throughput of the one write
// path: journal group commit, applied to the B-tree in the background.
// One op is one append with a checkpoint; each writer owns a stream.
// events=10 is a plugin's Run batch; events=1 with 64 writers is the
// track scenario (one publish per user stream).
func BenchmarkCommit(b *testing.B) {
	for _, c := range []struct{ writers, perAppend int }{{1, 10}, {2, 10}, {10, 10}, {100, 10}, {64, 1}} {
		b.Run(fmt.Sprintf("writers=%d/events=%d", c.writers, c.perAppend), func(b *testing.B) {
			benchCommit(b, c.writers, c.perAppend, Options{})
		})
	}
}

// BenchmarkCommitSyncDepth is BenchmarkCommit's small-append cases at
// 1 to 4 journal syncs in flight: depth 1 is the one-group-at-a-time
// committer (write, sync, acknowledge, then gather the next group).
func BenchmarkCommitSyncDepth(b *testing.B) {
	for _, c := range []struct{ writers, perAppend int }{{2, 10}, {10, 10}, {64, 1}} {
		for depth := 1; depth <= 4; depth++ {
			b.Run(fmt.Sprintf("writers=%d/events=%d/depth=%d", c.writers, c.perAppend, depth), func(b *testing.B) {
				benchCommit(b, c.writers, c.perAppend, Options{syncDepth: depth})
			})
		}
	}
}

func benchCommit(b *testing.B, writers, perAppend int, opts Options) {
	s := openT(b, tempPath(b), opts)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ReportAllocs()
	before := s.Stats()
	dbBefore := s.db.Stats().TxStats
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("bench-%d", w)
			cp := &stream.Checkpoint{Emitter: name}
			evs := make([]*event.Event, perAppend)
			seq := uint64(0)
			for next.Add(1) <= int64(b.N) {
				for i := range evs {
					seq++
					evs[i] = &event.Event{Stream: name, Seq: seq, Type: "line", Time: time.Now(), Data: benchPayload}
				}
				cp.Value = fmt.Appendf(cp.Value[:0], "offset=%d", seq)
				if err := s.Commit(ctx, stream.Append{Stream: name, Events: evs, Checkpoint: cp}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	st := s.Stats()
	txs := float64(st.Transactions - before.Transactions)
	b.ReportMetric(float64(b.N*perAppend)/elapsed, "events/s")
	b.ReportMetric(txs/elapsed, "tx/s") // durable commits writers waited for
	b.ReportMetric(float64(b.N)/txs, "appends/tx")
	// B-tree transactions are the applier's.
	dbAfter := s.db.Stats().TxStats
	b.ReportMetric(float64(st.Applies-before.Applies)/elapsed, "applies/s")
	b.ReportMetric(float64(dbAfter.GetWrite()-dbBefore.GetWrite())/float64(b.N), "pagewrites/append")
}

// BenchmarkReadAfter reads pages of 100 events at random points of a
// 20,000-event stream.
func BenchmarkReadAfter(b *testing.B) {
	const total, page = 20000, 100
	s := openT(b, tempPath(b), Options{NoSync: true})
	ctx := context.Background()
	evs := make([]*event.Event, total)
	for i := range evs {
		evs[i] = &event.Event{Seq: uint64(i + 1), Type: "line", Time: t0.Add(time.Duration(i) * time.Millisecond), Data: benchPayload}
	}
	if err := s.Commit(ctx, stream.Append{Stream: "s", Events: evs}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		after := uint64(i*7919) % (total - page)
		got, err := s.ReadAfter(ctx, "s", after, page)
		if err != nil || len(got) != page {
			b.Fatalf("ReadAfter = %d events, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(page), "events/op")
}
