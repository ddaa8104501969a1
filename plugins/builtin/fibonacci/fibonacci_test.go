package fibonacci_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/plugins/builtin/fibonacci"
	"github.com/sidestream/sidestream/plugins/sdk"
	"github.com/sidestream/sidestream/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.Conformance(t, fibonacci.New(), sdktest.Suite{
		ValidConfigs:   []json.RawMessage{json.RawMessage(`{}`)},
		InvalidConfigs: []json.RawMessage{json.RawMessage(`{"start":5}`)},
		Checkpoints:    [][]byte{[]byte(`{"position":100,"current":"354224848179261915075","previous":"218922995834555169026"}`)},
	})
}

// fib computes F(n) independently of the plugin (matrix-free doubling is
// overkill here: a plain loop is the obvious reference).
func fib(n int) *big.Int {
	a, b := big.NewInt(0), big.NewInt(1)
	for range n {
		a.Add(a, b)
		a, b = b, a
	}
	return a
}

type answer struct {
	Position uint64 `json:"position"`
	Value    string `json:"value"`
}

// fibHarness sends commands the way the host does: each with the latest
// checkpoint the previous command returned.
type fibHarness struct {
	t  *testing.T
	h  *sdktest.Harness
	cp []byte
}

func newFib(t *testing.T) *fibHarness {
	return &fibHarness{t: t, h: sdktest.New(t, fibonacci.New())}
}

func (f *fibHarness) do(name string) answer {
	f.t.Helper()
	res, err := f.h.Command(f.t.Context(), sdk.Instance{ID: "f", Config: json.RawMessage(`{}`), Checkpoint: f.cp}, name, nil)
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	var a answer
	if err := json.Unmarshal(res.Result, &a); err != nil {
		f.t.Fatalf("%s result %s: %v", name, res.Result, err)
	}
	if name == fibonacci.CmdCurrent {
		if len(res.Batch.Events) != 0 || res.Batch.Checkpoint != nil {
			f.t.Fatalf("current changed state: %+v", res.Batch)
		}
		return a
	}
	if len(res.Batch.Events) != 1 || res.Batch.Events[0].Type != fibonacci.EventType ||
		string(res.Batch.Events[0].Data) != string(res.Result) {
		f.t.Fatalf("%s: batch %+v, want one fib event with the result", name, res.Batch)
	}
	if res.Batch.Checkpoint == nil {
		f.t.Fatalf("%s: no checkpoint", name)
	}
	f.cp = res.Batch.Checkpoint
	return a
}

func TestCommandSequence(t *testing.T) {
	t.Parallel()
	f := newFib(t)
	steps := []struct {
		cmd  string
		want answer
	}{
		{fibonacci.CmdCurrent, answer{0, "0"}},
		{fibonacci.CmdPrevious, answer{0, "0"}}, // stays at 0
		{fibonacci.CmdNext, answer{1, "1"}},
		{fibonacci.CmdNext, answer{2, "1"}},
		{fibonacci.CmdNext, answer{3, "2"}},
		{fibonacci.CmdNext, answer{4, "3"}},
		{fibonacci.CmdPrevious, answer{3, "2"}},
		{fibonacci.CmdCurrent, answer{3, "2"}},
		{fibonacci.CmdPrevious, answer{2, "1"}},
		{fibonacci.CmdPrevious, answer{1, "1"}},
		{fibonacci.CmdPrevious, answer{0, "0"}},
		{fibonacci.CmdPrevious, answer{0, "0"}},
		{fibonacci.CmdNext, answer{1, "1"}}, // next still works after bouncing off 0
		{fibonacci.CmdNext, answer{2, "1"}},
		{fibonacci.CmdReset, answer{0, "0"}},
		{fibonacci.CmdNext, answer{1, "1"}},
	}
	for i, s := range steps {
		if got := f.do(s.cmd); got != s.want {
			t.Fatalf("step %d %s = %+v, want %+v", i, s.cmd, got, s.want)
		}
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n      int
		value  string // "" to check against the reference only
		digits int
		prefix string
	}{
		{n: 1, value: "1"},
		{n: 10, value: "55"},
		{n: 93, value: "12200160415121876738"}, // first beyond int64
		{n: 100, value: "354224848179261915075"},
		{n: 10000, digits: 2090, prefix: "3364476487643178326662161200510754331030214846068006390656476997468008144216666236815559551363373402"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			t.Parallel()
			st := fibonacci.Start()
			for range tt.n {
				st.StepForward()
			}
			// Round-trip through the checkpoint so the stored form is what
			// is being checked, then ask the real plugin for current.
			cp, err := st.Encode()
			if err != nil {
				t.Fatal(err)
			}
			res, err := fibonacci.New().(sdk.Commander).Command(context.Background(), sdk.Instance{ID: "v", Checkpoint: cp}, fibonacci.CmdCurrent, nil)
			if err != nil {
				t.Fatal(err)
			}
			var a answer
			if err := json.Unmarshal(res.Result, &a); err != nil {
				t.Fatal(err)
			}
			if a.Position != uint64(tt.n) || a.Value != fib(tt.n).String() {
				t.Fatalf("F(%d) = %+v, want %s", tt.n, a, fib(tt.n))
			}
			if tt.value != "" && a.Value != tt.value {
				t.Fatalf("F(%d) = %s, want %s", tt.n, a.Value, tt.value)
			}
			if tt.digits != 0 && (len(a.Value) != tt.digits || !strings.HasPrefix(a.Value, tt.prefix)) {
				t.Fatalf("F(%d) has %d digits, prefix %.20s…; want %d digits, prefix %.20s…", tt.n, len(a.Value), a.Value, tt.digits, tt.prefix)
			}
		})
	}
}

// Stepping back from a deep position retraces the sequence exactly.
func TestStepBackFromDeep(t *testing.T) {
	t.Parallel()
	st := fibonacci.Start()
	for range 10000 {
		st.StepForward()
	}
	for n := 10000; n > 0; n-- {
		st.StepBack()
	}
	if st.Position != 0 || st.Current.Sign() != 0 || st.Previous.Cmp(big.NewInt(1)) != 0 {
		t.Fatalf("after 10000 forward and back: %+v, want position 0", st)
	}
	cp, _ := st.Encode()
	if _, err := fibonacci.DecodeState(cp); err != nil {
		t.Fatalf("state after round trip does not decode: %v", err)
	}
}

// State survives a "restart": a fresh harness (new plugin process
// stand-in) continues from the checkpoint the old one returned.
func TestResumeAcrossRestart(t *testing.T) {
	t.Parallel()
	f := newFib(t)
	for range 100 {
		f.do(fibonacci.CmdNext)
	}
	g := newFib(t)
	g.cp = f.cp
	if got := g.do(fibonacci.CmdCurrent); got != (answer{100, "354224848179261915075"}) {
		t.Fatalf("after restart current = %+v", got)
	}
	if got := g.do(fibonacci.CmdNext); got.Position != 101 || got.Value != fib(101).String() {
		t.Fatalf("after restart next = %+v", got)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t, fibonacci.New())
	ctx := t.Context()
	inst := sdk.Instance{ID: "e", Config: json.RawMessage(`{}`)}

	if _, err := h.Command(ctx, inst, "jump", nil); !errors.Is(err, sdk.ErrUnknownCommand) {
		t.Errorf("unknown command: %v, want ErrUnknownCommand", err)
	}
	var ce *sdk.CommandError
	if _, err := h.Command(ctx, inst, fibonacci.CmdNext, json.RawMessage(`{"by":2}`)); !errors.As(err, &ce) {
		t.Errorf("next with args: %v, want *sdk.CommandError", err)
	}
	bad := inst
	bad.Checkpoint = []byte(`{"position":0,"current":"7","previous":"1"}`)
	_, err := h.Command(ctx, bad, fibonacci.CmdNext, nil)
	if err == nil || errors.As(err, &ce) || errors.Is(err, sdk.ErrUnknownCommand) {
		t.Errorf("corrupt checkpoint: %v, want an internal error (not the caller's fault)", err)
	}
	var ve *sdk.ValidationError
	if _, err := h.Validate(ctx, json.RawMessage(`{"x":1}`)); !errors.As(err, &ve) || ve.Fields[0].Field != "x" {
		t.Errorf("config with a field: %v, want a field error on x", err)
	}
}

// One plugin process answers from the checkpoint it is given, not from
// the state it last produced: after a rolled-back commit the host passes
// an older checkpoint, and another instance has its own.
func TestCommandFollowsTheGivenCheckpoint(t *testing.T) {
	t.Parallel()
	p := fibonacci.New().(sdk.Commander)
	ctx := context.Background()
	var cps [][]byte
	cp := []byte(nil)
	for range 6 {
		res, err := p.Command(ctx, sdk.Instance{ID: "a", Checkpoint: cp}, fibonacci.CmdNext, nil)
		if err != nil {
			t.Fatal(err)
		}
		cp = res.Batch.Checkpoint
		cps = append(cps, cp)
	}
	steps := []struct {
		id   string
		cp   []byte
		cmd  string
		want answer
	}{
		{"a", cps[2], fibonacci.CmdNext, answer{4, "3"}},     // rolled back to position 3
		{"a", cps[5], fibonacci.CmdNext, answer{7, "13"}},    // the newest again
		{"b", nil, fibonacci.CmdNext, answer{1, "1"}},        // another instance
		{"a", cps[4], fibonacci.CmdPrevious, answer{4, "3"}}, // back from 5
		{"a", cps[0], fibonacci.CmdPrevious, answer{0, "0"}}, // back from 1
		{"a", append([]byte{}, cps[5]...), fibonacci.CmdCurrent, answer{6, "8"}},
	}
	for i, s := range steps {
		res, err := p.Command(ctx, sdk.Instance{ID: s.id, Checkpoint: s.cp}, s.cmd, nil)
		if err != nil {
			t.Fatal(err)
		}
		var a answer
		if err := json.Unmarshal(res.Result, &a); err != nil || a != s.want {
			t.Fatalf("step %d: %s = %+v (%v), want %+v", i, s.cmd, a, err, s.want)
		}
		if s.cmd != fibonacci.CmdCurrent {
			st, err := fibonacci.DecodeState(res.Batch.Checkpoint)
			if err != nil || st.Position != a.Position || st.Current.String() != a.Value {
				t.Fatalf("step %d: checkpoint %s does not match the answer (%v)", i, res.Batch.Checkpoint, err)
			}
		}
	}
}

// BenchmarkNext measures next at position ~20,000 (4,180 digits, where a
// 10 s fib bench ends): fed its own last checkpoint (what the host does)
// and under an id it has not seen (so the checkpoint is parsed, as
// before the plugin remembered its last state).
func BenchmarkNext(b *testing.B) {
	for _, mode := range []string{"own-checkpoint", "parsed-checkpoint"} {
		b.Run(mode, func(b *testing.B) {
			st := fibonacci.Start()
			for range 20000 {
				st.StepForward()
			}
			cp, _ := st.Encode()
			p := fibonacci.New().(sdk.Commander)
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				id := "bench"
				if mode == "parsed-checkpoint" {
					id = fmt.Sprint("bench-", i)
				}
				res, err := p.Command(ctx, sdk.Instance{ID: id, Checkpoint: cp}, fibonacci.CmdNext, nil)
				if err != nil {
					b.Fatal(err)
				}
				cp = res.Batch.Checkpoint
			}
		})
	}
}
