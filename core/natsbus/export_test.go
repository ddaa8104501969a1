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
// message (one wake and one write per subscriber on every other node);
// without a linger each read is sent at once. Either way every seq is sent
// once, in order.
func TestExporterLingerGathersBatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		linger  time.Duration
		wantOne bool
	}{
		{"linger gathers a burst", 300 * time.Millisecond, true},
		{"no linger sends each read", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.RunServer(t)
			ctx := context.Background()
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
			defer func() { _ = exp.Close(ctx) }()
			exp.Export(st)
			// Ten events, each published apart so a reader without a
			// linger sees them one by one.
			for range 10 {
				publishN(t, st, 1)
				time.Sleep(5 * time.Millisecond)
			}
			var seqs []uint64
			batches := 0
			deadline := time.After(10 * time.Second)
			for len(seqs) < 10 {
				select {
				case m := <-msgs:
					var evs []*event.Event
					if err := json.Unmarshal(m.Data, &evs); err != nil {
						t.Fatal(err)
					}
					batches++
					for _, e := range evs {
						seqs = append(seqs, e.Seq)
					}
				case <-deadline:
					t.Fatalf("got seqs %v in %d messages, want 1..10", seqs, batches)
				}
			}
			for i, s := range seqs {
				if s != uint64(i+1) {
					t.Fatalf("seqs %v, want 1..10 once each in order", seqs)
				}
			}
			if tc.wantOne && batches != 1 {
				t.Fatalf("%d messages for a burst inside the linger, want 1", batches)
			}
			if !tc.wantOne && batches < 5 {
				t.Fatalf("%d messages without a linger for 10 spaced events, want each read sent at once", batches)
			}
		})
	}
}
