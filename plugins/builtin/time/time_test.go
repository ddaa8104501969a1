package timeplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	timeplugin "github.com/sidestream/sidestream/plugins/builtin/time"
	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.Conformance(t, timeplugin.New(), sdktest.Suite{
		ValidConfigs: []json.RawMessage{
			json.RawMessage(`{}`), json.RawMessage(`{"interval":"10ms"}`), json.RawMessage(`{"interval":"1500ms"}`),
			json.RawMessage(`{"interval":"1h"}`),
		},
		InvalidConfigs: []json.RawMessage{
			json.RawMessage(`{"interval":"soon"}`), json.RawMessage(`{"interval":"9ms"}`),
			json.RawMessage(`{"interval":"-1s"}`), json.RawMessage(`{"interval":5}`), json.RawMessage(`{"every":"1s"}`),
		},
		NeedsEvents: true,
		RunConfig:   json.RawMessage(`{"interval":"10ms"}`),
	})
}

func TestValidateInterval(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, timeplugin.New())
	tests := []struct {
		config   string
		want     string
		errField string
	}{
		{config: `{}`, want: `{"interval":"1s"}`},
		{config: `{"interval":"1000ms"}`, want: `{"interval":"1s"}`},
		{config: `{"interval":"10ms"}`, want: `{"interval":"10ms"}`},
		{config: `{"interval":"90s"}`, want: `{"interval":"1m30s"}`},
		{config: `{"interval":"9ms"}`, errField: "interval"},
		{config: `{"interval":"0"}`, errField: "interval"},
		{config: `{"interval":"1 second"}`, errField: "interval"},
		{config: `{"interval":""}`, errField: "interval"},
		{config: `{"interval":1}`, errField: "interval"},
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
			if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tt.errField {
				t.Fatalf("Validate = %s, %v; want one field error on %q", got, err, tt.errField)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, timeplugin.New())
	ctx, cancel := context.WithTimeout(t.Context(), sdktest.HangGuard)
	defer cancel()
	r := h.Run(ctx, sdk.Instance{ID: "t1", Config: json.RawMessage(`{"interval":"10ms"}`)})
	defer r.Stop()

	var last time.Time
	for i := range 5 {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) != 1 || b.Events[0].Type != timeplugin.EventType {
			t.Fatalf("batch %d: %+v, want one %q event", i, b, timeplugin.EventType)
		}
		var d struct {
			Time   *string `json:"time"`
			UnixMs *int64  `json:"unix_ms"`
		}
		dec := json.NewDecoder(bytes.NewReader(b.Events[0].Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil || d.Time == nil || d.UnixMs == nil {
			t.Fatalf("data %s: %v (want exactly time and unix_ms)", b.Events[0].Data, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, *d.Time)
		if err != nil || ts.Location() != time.UTC {
			t.Fatalf("time %q is not RFC3339Nano UTC: %v", *d.Time, err)
		}
		if ts.UnixMilli() != *d.UnixMs {
			t.Errorf("unix_ms %d disagrees with time %s", *d.UnixMs, *d.Time)
		}
		if !ts.After(last) {
			t.Errorf("event %d time %s not after %s", i, ts, last)
		}
		last = ts
	}
}
