package logplugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

type discardOutput struct{ events int }

func (d *discardOutput) Emit(_ context.Context, b sdk.Batch) error {
	d.events += len(b.Events)
	return nil
}

// BenchmarkTailConsume measures turning file bytes into events and
// batches: one op is one 120-byte log line.
func BenchmarkTailConsume(b *testing.B) {
	line := "2024-05-01T12:00:00.123456Z vm-17 app[1234]: GET /api/v1/items/42 200 12ms " + strings.Repeat("x", 42) + "\n"
	chunk := []byte(strings.Repeat(line, readChunk/len(line)))
	perChunk := readChunk / len(line)
	out := &discardOutput{}
	tl := &tailer{out: out, pathJSON: []byte(`"/var/log/guests/vm-17/console.log"`), log: discardLogger()}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	for i := 0; i < b.N; i += perChunk {
		if err := tl.consume(ctx, chunk, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyntheticBatch measures the generator: one op is one line.
func BenchmarkSyntheticBatch(b *testing.B) {
	g := newGenerator(100000, knownLevels, "vm-17", 0, 1)
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += maxBatchLines {
		_ = g.batch(start, int64(i), maxBatchLines)
	}
}
