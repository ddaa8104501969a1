package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// applyStreams is how many streams hold the kept history and take the
// measured appends: the track shape, one stream per user.
const applyStreams = 64

// BenchmarkJournalApply measures what the journal's background apply
// costs as the history it writes into grows: the store first holds
// `kept` events (spread over 64 streams, ~200-byte payloads), then 64
// writers append one event plus a checkpoint each, durably, as track
// does. It reports the applier's B-tree time per event (its transactions,
// fsyncs included, divided by the events they applied), the B-tree pages
// written per event, and the append latency writers see (the journal's
// group commit, mean and p99).
//
// Each size's history is generated once per run (with fsync off, then
// the file is reopened with fsync on), so b.N's growth does not rebuild
// it; select one size with e.g. -bench 'JournalApply/kept=1000000$'.
// kept=10000000 writes ~2.6 GB and takes minutes to generate.
func BenchmarkJournalApply(b *testing.B) {
	stores := map[int]*keptStore{}
	defer func() {
		for _, k := range stores {
			_ = k.s.Close(context.Background())
		}
	}()
	dir := b.TempDir()
	for _, kept := range []int{0, 1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("kept=%d", kept), func(b *testing.B) {
			k := stores[kept]
			if k == nil {
				k = newKeptStore(b, filepath.Join(dir, fmt.Sprintf("kept-%d.db", kept)), kept)
				stores[kept] = k
			}
			benchApply(b, k)
		})
	}
}

// keptStore is a store holding a generated history, and the next seq of
// each of its streams.
type keptStore struct {
	s    *Store
	next [applyStreams]uint64
}

// newKeptStore writes kept events into a new store at path in appends
// of up to 4,096 events, with fsync off (the history only has to exist),
// then reopens it with fsync on for the measurement.
func newKeptStore(b *testing.B, path string, kept int) *keptStore {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	s, err := Open(ctx, path, Options{NoSync: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	k := &keptStore{}
	for i := range k.next {
		k.next[i] = 1
	}
	const chunk = 4096
	evs := make([]*event.Event, 0, chunk)
	for done := 0; done < kept; {
		w := (done / chunk) % applyStreams
		name := applyStreamName(w)
		evs = evs[:0]
		for n := min(chunk, kept-done); len(evs) < n; k.next[w]++ {
			evs = append(evs, &event.Event{Stream: name, Seq: k.next[w], Type: "line", Time: t0, Data: benchPayload})
		}
		if err := s.Commit(ctx, stream.Append{Stream: name, Events: evs}); err != nil {
			b.Fatal(err)
		}
		done += len(evs)
	}
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
	gen := time.Since(start)
	if k.s, err = Open(ctx, path, Options{}, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("kept=%d: generated in %v, reopened in %v", kept, gen.Round(time.Millisecond), (time.Since(start) - gen).Round(time.Millisecond))
	return k
}

func applyStreamName(w int) string { return fmt.Sprintf("apply-%d", w) }

// benchApply runs b.N durable appends of one event and a checkpoint
// from applyStreams writers, waits until the applier has written all of
// them, and reports the applier's cost per event and the latencies.
func benchApply(b *testing.B, k *keptStore) {
	ctx := context.Background()
	s := k.s
	per := (b.N + applyStreams - 1) / applyStreams
	lat := make([][]time.Duration, applyStreams)
	errs := make(chan error, applyStreams)
	var wg sync.WaitGroup
	before, dbBefore := s.Stats(), s.db.Stats().TxStats
	b.ResetTimer()
	start := time.Now()
	for w := range applyStreams {
		lat[w] = make([]time.Duration, 0, per)
		wg.Go(func() {
			name := applyStreamName(w)
			cp := &stream.Checkpoint{Emitter: name}
			ev := []*event.Event{nil}
			for range per {
				seq := k.next[w]
				k.next[w]++
				ev[0] = &event.Event{Stream: name, Seq: seq, Type: "line", Time: time.Now(), Data: benchPayload}
				cp.Value = fmt.Appendf(cp.Value[:0], "offset=%d", seq)
				t := time.Now()
				if err := s.Commit(ctx, stream.Append{Stream: name, Events: ev, Checkpoint: cp}); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	if err := s.ap.wait(ctx); err != nil { // the applier's share of these events
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	st, dbAfter := s.Stats(), s.db.Stats().TxStats
	events := float64(st.Events - before.Events)
	all := slices.Concat(lat...)
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64((st.ApplyTime-before.ApplyTime).Nanoseconds())/events/1e3, "apply-µs/event")
	b.ReportMetric(events/float64(st.Applies-before.Applies), "events/apply")
	b.ReportMetric(float64(dbAfter.GetWrite()-dbBefore.GetWrite())/events, "pagewrites/event")
	b.ReportMetric(float64(sum.Microseconds())/float64(len(all)), "append-mean-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "append-p99-µs")
}
