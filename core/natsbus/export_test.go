package natsbus

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/core/natsbus/natstest"
	"github.com/sidestream/sidestream/core/stream"
)

// The exporter's linger gathers the events published within it into one
// message (one wake and one write per subscriber on every other node), up
// to stream.MaxBatch events; without a linger each read is sent at once.
// Either way every seq is sent once, in order. Nothing here depends on
// how fast the machine is: the linger outlasts the test, so only a full
// batch can send the gathered events, and without a linger each event is
// published only once the previous one arrived.
func TestExporterLingerGathersBatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		linger time.Duration
	}{
		{"linger gathers a burst up to a full batch", time.Hour},
		{"no linger sends each read", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv := natstest.RunServer(t)
			st, err := newHub(t).Open(ctx, "em-linger", stream.Config{})
			if err != nil {
				t.Fatal(err)
			}
			nc := srv.Connect(t)
			msgs := make(chan *nats.Msg, 64)
			sub, err := nc.ChanSubscribe(subjectEvents+token("em-linger"), msgs)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			exp := NewExporter(srv.Connect(t), tc.linger, slog.New(slog.DiscardHandler))
			defer func() { _ = exp.Close(context.Background()) }()
			exp.Export(st)
			if tc.linger > 0 {
				// One event per publish: each may be its own read.
				publishN(t, st, stream.MaxBatch)
				got := nextBatch(ctx, t, msgs)
				if len(got) != stream.MaxBatch || got[0] != 1 || got[len(got)-1] != stream.MaxBatch {
					t.Fatalf("first message holds %d seqs (%v…), want 1..%d in one", len(got), got[:min(len(got), 5)], stream.MaxBatch)
				}
				return
			}
			for i := uint64(1); i <= 10; i++ {
				publishN(t, st, 1)
				if got := nextBatch(ctx, t, msgs); len(got) != 1 || got[0] != i {
					t.Fatalf("message for event %d holds seqs %v, want [%d]", i, got, i)
				}
			}
		})
	}
}

// nextBatch returns the seqs of the next message on msgs, in order.
func nextBatch(ctx context.Context, t *testing.T, msgs <-chan *nats.Msg) []uint64 {
	t.Helper()
	select {
	case m := <-msgs:
		var evs []*event.Event
		if err := json.Unmarshal(m.Data, &evs); err != nil {
			t.Fatal(err)
		}
		seqs := make([]uint64, len(evs))
		for i, e := range evs {
			seqs[i] = e.Seq
			if i > 0 && e.Seq != seqs[i-1]+1 {
				t.Fatalf("seqs %v in one message, want them in order once each", seqs)
			}
		}
		return seqs
	case <-ctx.Done():
		t.Fatalf("no message from the exporter: %v", ctx.Err())
		return nil
	}
}
