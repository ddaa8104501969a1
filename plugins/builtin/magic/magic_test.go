package magic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/plugins/builtin/magic"
	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.Conformance(t, magic.New(), sdktest.Suite{
		ValidConfigs: []json.RawMessage{
			json.RawMessage(`{}`), json.RawMessage(`{"rate":1}`), json.RawMessage(`{"rate":0.5}`),
			json.RawMessage(`{"rate":100000}`),
		},
		InvalidConfigs: []json.RawMessage{
			json.RawMessage(`{"rate":0}`), json.RawMessage(`{"rate":-3}`), json.RawMessage(`{"rate":100001}`),
			json.RawMessage(`{"rate":"fast"}`), json.RawMessage(`{"speed":1}`),
		},
		NeedsEvents: true,
		RunConfig:   json.RawMessage(`{"rate":1000}`),
	})
}

func TestValidateRate(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, magic.New())
	tests := []struct {
		config   string
		want     string // normalized, or "" for a field error on rate
		errField string
	}{
		{config: `{}`, want: `{"rate":1}`},
		{config: `{"rate":250}`, want: `{"rate":250}`},
		{config: `{"rate":0.25}`, want: `{"rate":0.25}`},
		{config: `{"rate":100000}`, want: `{"rate":100000}`},
		{config: `{"rate":0}`, errField: "rate"},
		{config: `{"rate":-1}`, errField: "rate"},
		{config: `{"rate":100000.5}`, errField: "rate"},
		{config: `{"rate":"1"}`, errField: "rate"},
		{config: `{"rat":1}`, errField: "rat"},
	}
	for _, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			got, err := h.Validate(t.Context(), json.RawMessage(tt.config))
			if tt.errField == "" {
				if err != nil || string(got) != tt.want {
					t.Fatalf("Validate = %s, %v; want %s", got, err, tt.want)
				}
				return
			}
			var ve *sdk.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 || ve.Fields[0].Field != tt.errField {
				t.Fatalf("Validate = %s, %v; want a field error on %q", got, err, tt.errField)
			}
		})
	}
}

// The plugin's own Validate rejects bad rates even without the SDK's schema
// check in front of it.
func TestValidateDirect(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{`{"rate":0}`, `{"rate":-5}`, `{"rate":1e9}`, `[]`} {
		_, err := magic.New().Validate(context.Background(), json.RawMessage(cfg))
		var ve *sdk.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Validate(%s) = %v, want *sdk.ValidationError", cfg, err)
		}
	}
}

type magicData struct {
	Magic     *int64  `json:"magic"`
	Timestamp *string `json:"timestamp"`
}

func TestEventShape(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, magic.New())
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()
	r := h.Run(ctx, sdk.Instance{ID: "m1", Config: json.RawMessage(`{"rate":5000}`)})
	defer r.Stop()

	seen := map[int64]bool{}
	for range 50 {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b.Checkpoint != nil {
			t.Errorf("magic emitted a checkpoint %q; it has no state", b.Checkpoint)
		}
		for _, e := range b.Events {
			var d magicData
			dec := json.NewDecoder(bytes.NewReader(e.Data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil || d.Magic == nil || d.Timestamp == nil {
				t.Fatalf("event data %s: %v (want exactly magic and timestamp)", e.Data, err)
			}
			ts, err := time.Parse(time.RFC3339, *d.Timestamp)
			if err != nil || ts.Location() != time.UTC {
				t.Fatalf("timestamp %q is not RFC3339 UTC: %v", *d.Timestamp, err)
			}
			// Milliseconds, as the SSE prototype had them.
			if _, err := time.Parse(magic.TimestampLayout, *d.Timestamp); err != nil || len(*d.Timestamp) != len("2006-01-02T15:04:05.000Z") {
				t.Fatalf("timestamp %q does not have exactly millisecond digits", *d.Timestamp)
			}
			seen[*d.Magic] = true
		}
		if len(seen) >= 1000 {
			break
		}
	}
	// 64-bit random numbers: a repeat among 1000 means the RNG is broken.
	if len(seen) < 1000 {
		t.Fatalf("got %d distinct magic numbers in 50 batches at 5000/s, want ≥ 1000", len(seen))
	}
}

// At a high rate, events come many per batch (the batching that makes
// 100,000/s cheap), not one batch per event.
func TestHighRateBatches(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, magic.New())
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()
	r := h.Run(ctx, sdk.Instance{ID: "fast", Config: json.RawMessage(`{"rate":100000}`)})
	defer r.Stop()
	var batches, events int
	for batches < 5 {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		batches++
		events += len(b.Events)
	}
	if events < batches*100 {
		t.Fatalf("%d events in %d batches at 100000/s: want ≥ 100 per batch on average", events, batches)
	}
}

// BenchmarkThroughput measures events per second through the real SDK
// adapter and gRPC (in memory) at the maximum rate.
func BenchmarkThroughput(b *testing.B) {
	b.ReportAllocs()
	h := sdktest.New(b, magic.New())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := h.Run(ctx, sdk.Instance{ID: "bench", Config: json.RawMessage(`{"rate":100000}`)})
	defer r.Stop()
	events := 0
	start := time.Now()
	for b.Loop() {
		batch, err := r.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		events += len(batch.Events)
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/batch")
}
