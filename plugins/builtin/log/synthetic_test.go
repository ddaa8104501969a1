package logplugin

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/sidestream/sidestream/plugins/sdk"
)

type synthEvent struct {
	Timestamp string `json:"timestamp"`
	Level     string `json:"level"`
	Message   string `json:"message"`
	Guest     string `json:"guest"`
	Line      uint64 `json:"line"`
}

func decodeSynth(t *testing.T, evs []sdk.Event) []synthEvent {
	t.Helper()
	out := make([]synthEvent, len(evs))
	for i, e := range evs {
		if e.Type != EventType {
			t.Fatalf("event type %q", e.Type)
		}
		dec := json.NewDecoder(bytesReader(e.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatalf("event %s: %v", e.Data, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, out[i].Timestamp)
		if err != nil || !ts.Equal(e.Time) {
			t.Fatalf("timestamp %q (event time %v): %v", out[i].Timestamp, e.Time, err)
		}
		if out[i].Message == "" {
			t.Fatalf("empty message in %s", e.Data)
		}
	}
	return out
}

func TestSyntheticLevelsGuestAndLineNumbers(t *testing.T) {
	t.Parallel()
	p := NewWithRoots(nil)
	cfg := json.RawMessage(`{"rate":2000,"levels":["WARN","ERROR"],"guest":"vm-17"}`)
	rec := newRecorder()
	r := start(t, p, sdk.Instance{ID: "e1", Config: cfg}, rec)
	evs := decodeSynth(t, rec.waitEvents(t, 300))
	must(t, r.stop(t))
	seen := map[string]int{}
	for i, e := range evs {
		if e.Line != uint64(i+1) || e.Guest != "vm-17" {
			t.Fatalf("event %d: line %d guest %q", i, e.Line, e.Guest)
		}
		if e.Level != "WARN" && e.Level != "ERROR" {
			t.Fatalf("level %q not configured", e.Level)
		}
		seen[e.Level]++
	}
	if seen["WARN"] == 0 || seen["ERROR"] == 0 {
		t.Fatalf("levels seen %v, want both", seen)
	}
	for _, b := range rec.snapshot() {
		last := decodeSynth(t, b.Events[len(b.Events)-1:])[0]
		if cp, ok, err := decodeLineCheckpoint(b.Checkpoint); err != nil || !ok || cp.Line != last.Line {
			t.Fatalf("checkpoint %s after line %d", b.Checkpoint, last.Line)
		}
		if len(b.Events) > maxBatchLines {
			t.Fatalf("batch of %d events", len(b.Events))
		}
	}
}

func TestSyntheticDefaultConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{``, `null`, `{}`} {
		rec := newRecorder()
		r := start(t, NewWithRoots(nil), sdk.Instance{ID: "vm-default", Config: json.RawMessage(cfg)}, rec)
		evs := decodeSynth(t, rec.waitEvents(t, 2))
		must(t, r.stop(t))
		for _, e := range evs {
			if e.Guest != "vm-default" || !slices.Contains(knownLevels, e.Level) {
				t.Fatalf("config %q: %+v", cfg, e)
			}
		}
	}
}

func TestSyntheticWeightsLevels(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := start(t, NewWithRoots(nil), sdk.Instance{ID: "w", Config: json.RawMessage(`{"rate":100000}`)}, rec)
	evs := decodeSynth(t, rec.waitEvents(t, 5000))
	must(t, r.stop(t))
	n := map[string]int{}
	for _, e := range evs {
		n[e.Level]++
	}
	// Weights 70/15/10/5: with thousands of lines the order is certain.
	if !(n["INFO"] > n["DEBUG"] && n["DEBUG"] > n["ERROR"] && n["WARN"] > n["ERROR"] && n["ERROR"] > 0) {
		t.Fatalf("level counts %v, want INFO > DEBUG, WARN > ERROR > 0", n)
	}
}

func TestSyntheticResumesLineNumbers(t *testing.T) {
	t.Parallel()
	p := NewWithRoots(nil)
	cfg := json.RawMessage(`{"rate":5000}`)
	rec := newRecorder()
	r := start(t, p, sdk.Instance{ID: "r", Config: cfg}, rec)
	rec.waitEvents(t, 10)
	must(t, r.stop(t))
	evs := decodeSynth(t, rec.events())
	cp := rec.lastCheckpoint(t)

	rec2 := newRecorder()
	r2 := start(t, p, sdk.Instance{ID: "r", Config: cfg, Checkpoint: cp}, rec2)
	evs2 := decodeSynth(t, rec2.waitEvents(t, 10))
	must(t, r2.stop(t))
	all := append(evs, evs2...)
	for i, e := range all {
		if e.Line != uint64(i+1) {
			t.Fatalf("line %d at position %d: numbers must continue after a restart", e.Line, i)
		}
	}
}
