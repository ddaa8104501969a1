package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The baseline server runs each scenario it is for with the real
// generator and clients, the scenario's own checks on what arrived hold
// (nothing lost or repeated, every acknowledged publish delivered, every
// next counted once), and CompareBaseline puts the ratio in the report;
// a scenario it cannot run is a usage error.
func TestBaselineRunsScenarios(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"fanout", Options{Subscribers: 20, Rate: 200}},
		{"fanout streams", Options{Subscribers: 6, Streams: 3, Rate: 100}},
		{"fanout http", Options{Subscribers: 4, Streams: 2, Rate: 100, Publish: "http"}},
		{"fanout http ws", Options{Subscribers: 2, Rate: 100, Publish: "http", Transport: "ws"}},
		{"track", Options{Concurrency: 4}},
		{"fib", Options{Concurrency: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.o
			o.Duration, o.Warmup = 500*time.Millisecond, 0
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, err := Baseline(ctx, strings.Fields(tc.name)[0], o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops == 0 || r.Errors != 0 || r.Lost != 0 || r.Duplicates != 0 {
				t.Fatalf("ops %d errors %d lost %d duplicates %d; samples %v", r.Ops, r.Errors, r.Lost, r.Duplicates, r.ErrorSamples)
			}
			if o.Publish == "http" {
				// End to end: each delivery's latency from the bench's own
				// publish, and each publish's answer time.
				for _, l := range r.Latencies {
					if (l.Name == "delivery" || l.Name == "publish") && l.Count == 0 {
						t.Errorf("latency %s has no values", l.Name)
					}
				}
				if len(r.Latencies) < 2 {
					t.Errorf("latencies %+v, want delivery and publish", r.Latencies)
				}
			}
			for _, c := range r.Checks {
				// Speed targets are the server's; what arrived is the
				// baseline's to get right.
				if !c.OK && (c.Name == "lost events" || c.Name == "delivered = published" || c.Name == "positions unique" || c.Name == "every next counted") {
					t.Errorf("check %s: want %s, got %s", c.Name, c.Want, c.Got)
				}
			}
			main := &Report{Rate: r.Rate / 2, Metrics: map[string]float64{}}
			CompareBaseline(main, r)
			if got := main.Metrics["ratio_to_baseline"]; got < 0.49 || got > 0.51 {
				t.Errorf("ratio %v, want 0.5", got)
			}
		})
	}
	if _, err := Baseline(context.Background(), "queue", Options{}); !errors.Is(err, ErrUsage) {
		t.Errorf("queue: %v, want ErrUsage", err)
	}
}
