package fibonacci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/sidestream/sidestream/plugins/sdk"
)

// The checkpoint is the position alone, whatever the position: it is
// stored (synced) and crosses the plugin pipe with every command.
func TestCheckpointIsThePositionAlone(t *testing.T) {
	t.Parallel()
	p := New().(sdk.Commander)
	var cp []byte
	for i := 1; i <= 3000; i++ {
		res, err := p.Command(context.Background(), sdk.Instance{ID: "c", Checkpoint: cp}, CmdNext, nil)
		if err != nil {
			t.Fatal(err)
		}
		cp = res.Batch.Checkpoint
		if want := fmt.Sprintf(`{"position":%d}`, i); string(cp) != want {
			t.Fatalf("after next %d: checkpoint %s, want %s", i, cp, want)
		}
	}
}

// After a restart the plugin has only the position: F(n) and F(n-1) come
// from fast doubling, held here to one addition at a time.
func TestAtPositionMatchesStepping(t *testing.T) {
	t.Parallel()
	want := Start()
	checks := map[uint64]bool{0: true, 1: true, 2: true, 3: true, 63: true, 64: true, 93: true, 94: true, 1000: true, 4095: true, 4096: true, 12345: true}
	for n := uint64(0); n <= 12345; n++ {
		if checks[n] {
			got := atPosition(n)
			if got.Position != n || got.curS != want.Current.String() || got.prevS != want.Previous.String() ||
				got.cur.String() != got.curS || got.prev.String() != got.prevS {
				t.Fatalf("atPosition(%d) = F %.30s… / %.30s…, want %.30s… / %.30s…", n, got.curS, got.prevS, want.Current, want.Previous)
			}
		}
		want.StepForward()
	}
}

// A restarted plugin (fresh process, nothing remembered) answers every
// command from a position-only checkpoint as it would have before.
func TestCommandsFromAPositionAlone(t *testing.T) {
	t.Parallel()
	fibAt := func(n uint64) string {
		s := Start()
		for s.Position < n {
			s.StepForward()
		}
		return s.Current.String()
	}
	tests := []struct {
		pos  uint64
		cmd  string
		want uint64
	}{
		{0, CmdCurrent, 0}, {0, CmdPrevious, 0}, {0, CmdNext, 1},
		{1, CmdPrevious, 0}, {100, CmdCurrent, 100}, {100, CmdNext, 101},
		{5000, CmdPrevious, 4999}, {5000, CmdNext, 5001}, {5000, CmdReset, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.cmd, tt.pos), func(t *testing.T) {
			t.Parallel()
			cp := fmt.Appendf(nil, `{"position":%d}`, tt.pos)
			res, err := New().(sdk.Commander).Command(context.Background(), sdk.Instance{ID: "r", Checkpoint: cp}, tt.cmd, nil)
			if err != nil {
				t.Fatal(err)
			}
			var a struct {
				Position uint64 `json:"position"`
				Value    string `json:"value"`
			}
			if err := json.Unmarshal(res.Result, &a); err != nil {
				t.Fatal(err)
			}
			if a.Position != tt.want || a.Value != fibAt(tt.want) {
				t.Fatalf("%s at %d = %d %.30s…, want %d %.30s…", tt.cmd, tt.pos, a.Position, a.Value, tt.want, fibAt(tt.want))
			}
		})
	}
}

// The sequence ends at MaxPosition: a checkpoint beyond it is not one
// this plugin wrote, and next at it is the caller's error, not a
// checkpoint that could not be read back after a restart.
func TestMaxPosition(t *testing.T) {
	t.Parallel()
	_, err := decodeCheckpoint(fmt.Appendf(nil, `{"position":%d}`, uint64(MaxPosition)+1))
	if !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("checkpoint past MaxPosition: %v, want ErrBadCheckpoint", err)
	}
	for _, cp := range []string{`{"position":3,"current":"2"}`, `{"position":3,"previous":"1"}`} {
		if _, err := decodeCheckpoint([]byte(cp)); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("checkpoint %s: %v, want ErrBadCheckpoint", cp, err)
		}
	}

	// The state at MaxPosition, as the plugin would remember it (its
	// numbers stand in: computing F(MaxPosition) takes long).
	p := &Plugin{}
	cp := fmt.Appendf(nil, `{"position":%d}`, MaxPosition)
	p.last.remember("m", cp, decoded{Position: MaxPosition, cur: decimal{2}, prev: decimal{1}, curS: "2", prevS: "1"})
	var ce *sdk.CommandError
	if _, err := p.Command(context.Background(), sdk.Instance{ID: "m", Checkpoint: cp}, CmdNext, nil); !errors.As(err, &ce) || ce.Code != "position_limit" {
		t.Fatalf("next at MaxPosition: %v, want a position_limit CommandError", err)
	}
	res, err := p.Command(context.Background(), sdk.Instance{ID: "m", Checkpoint: cp}, CmdPrevious, nil)
	if err != nil || string(res.Batch.Checkpoint) != fmt.Sprintf(`{"position":%d}`, MaxPosition-1) {
		t.Fatalf("previous at MaxPosition: %s, %v", res.Batch.Checkpoint, err)
	}
}

// BenchmarkAtPosition is the cost of a restart at a deep position.
func BenchmarkAtPosition(b *testing.B) {
	for _, n := range []uint64{20_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if d := atPosition(n); d.Position != n {
					b.Fatal(d.Position)
				}
			}
		})
	}
}
