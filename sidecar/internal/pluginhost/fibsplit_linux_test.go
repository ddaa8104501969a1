package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/bolt"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/stream"
)

// fibBenchBatch is how many nexts one round trip or one commit carries in
// the split benchmarks: about what concurrency 10 gives (half the callers
// wait on the commit in flight while the other half form the next batch).
const fibBenchBatch = 5

// BenchmarkFibSplit shows where a durable fibonacci next spends its time,
// each part alone and then together, all from position 0 as the bench's
// own emitter starts (the numbers, and so the bytes, grow with b.N):
//
//   - roundtrip: one CommandBatch of fibBenchBatch nexts to the real plugin
//     process, each fed the checkpoint the last one left; nothing stored.
//   - sync: one durable commit of fibBenchBatch fib-sized events and their
//     checkpoint through a stream into bbolt (journal write + fdatasync);
//     no plugin.
//   - fdatasync: the disk alone, a 16 KiB write in place into a
//     preallocated file and its fdatasync, as the journal does; with
//     par > 1, that many at once on the file (what overlapping the
//     syncs of successive commits could gain: µs/sync is wall time per
//     completed sync).
//   - command: the manager's Command at concurrency 10, plugin and commit
//     together (the sidecar's path minus HTTP).
//
// Run it short: go test -run '^$' -bench FibSplit -benchtime 2000x
func BenchmarkFibSplit(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "sidestream-fibonacci")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../plugins/cmd/sidestream-fibonacci").CombinedOutput(); err != nil {
		b.Fatalf("build fibonacci plugin: %v\n%s", err, out)
	}
	b.Run(fmt.Sprintf("roundtrip/batch=%d", fibBenchBatch), func(b *testing.B) { benchFibRoundTrip(b, bin) })
	for _, par := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("fdatasync/par=%d", par), func(b *testing.B) { benchFdatasync(b, par) })
	}
	b.Run(fmt.Sprintf("sync/events=%d", fibBenchBatch), benchFibSync)
	b.Run("command/conc=10", func(b *testing.B) { benchFibCommand(b, bin, 10) })
}

func benchFibRoundTrip(b *testing.B, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, err := New(fastConfig(Source{Name: "fibonacci", Cmd: []string{bin}}), nil)
	if err != nil {
		b.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = h.Close(ctx)
		}
	}()
	cmds := make([]emitter.Cmd, fibBenchBatch)
	for i := range cmds {
		cmds[i] = emitter.Cmd{Name: "next"}
	}
	var cp []byte
	self, children := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		outs, err := h.CommandBatch(ctx, "fibonacci", "bench", json.RawMessage(`{}`), cp, cmds)
		if err != nil {
			b.Fatal(err)
		}
		cp = outs[len(outs)-1].Batch.Checkpoint
	}
	b.StopTimer()
	nexts := float64(b.N * fibBenchBatch)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/nexts, "µs/next")
	b.ReportMetric(float64((cpuTime(syscall.RUSAGE_SELF)-self).Microseconds())/nexts, "host-cpu-µs/next")
	// The plugin's CPU shows in RUSAGE_CHILDREN once it was waited for
	// (its start, a few ms, included).
	closed = true
	if err := h.Close(ctx); err != nil {
		b.Error(err)
	}
	b.ReportMetric(float64((cpuTime(syscall.RUSAGE_CHILDREN)-children).Microseconds())/nexts, "plugin-cpu-µs/next")
}

// cpuTime is the user + system CPU time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchFibSync(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	store, err := bolt.Open(ctx, filepath.Join(b.TempDir(), "state.db"), bolt.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	hub := stream.NewHub(store, slog.New(slog.DiscardHandler), stream.HubOptions{})
	defer func() {
		if err := errors.Join(hub.Close(ctx), store.Close(ctx)); err != nil {
			b.Error(err)
		}
	}()
	st, err := hub.Open(ctx, "fib", stream.Config{Kind: "fibonacci", Persist: true, MaxEvents: emitter.DefaultRetention.MaxEvents})
	if err != nil {
		b.Fatal(err)
	}
	drafts := make([]event.Draft, fibBenchBatch)
	pos := 0
	before := store.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var cp []byte
		for i := range drafts {
			pos++
			// F(n) has about 0.209·n decimal digits.
			v := strings.Repeat("7", 1+pos*209/1000)
			drafts[i] = event.Draft{Type: "fib", Data: json.RawMessage(`{"position":` + strconv.Itoa(pos) + `,"value":"` + v + `"}`)}
			cp = []byte(`{"position":` + strconv.Itoa(pos) + `}`) // the plugin's checkpoint
		}
		if _, err := st.Publish(ctx, drafts, &stream.Checkpoint{Emitter: "fib", Value: cp}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/commit")
	// The applier writes the journal into the B-tree in the background,
	// on the same disk: its share of the wall time.
	after := store.Stats()
	b.ReportMetric(100*float64(after.ApplyTime-before.ApplyTime)/float64(b.Elapsed()), "%apply")
}

func benchFibCommand(b *testing.B, bin string, conc int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := openFib(b, b.TempDir(), bin)
	defer s.close(b)
	if _, err := s.mgr.Create(ctx, emitter.CreateRequest{ID: "fib", Kind: "fibonacci"}); err != nil {
		b.Fatal(err)
	}
	before := s.store.Stats()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range conc {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := s.mgr.Command(ctx, "fib", "next", nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "nexts/s")
	after := s.store.Stats()
	b.ReportMetric(float64(b.N)/float64(after.Transactions-before.Transactions), "nexts/commit")
}

func benchFdatasync(b *testing.B, par int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size, span = 16 << 10, 64 << 20
	if err := f.Truncate(span); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range par {
		wg.Go(func() {
			buf := make([]byte, size)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if _, err := f.WriteAt(buf, (i*size)%span); err != nil {
					b.Error(err)
					return
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/sync")
}
