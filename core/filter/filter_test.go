package filter

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/core/event"
)

func ev(seq uint64, typ, data string) *event.Event {
	return &event.Event{Stream: "app-log", Seq: seq, Type: typ,
		Time: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC), Data: json.RawMessage(data)}
}

func newCache(t *testing.T, size int) *Cache {
	t.Helper()
	c, err := NewCache(size)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMatch(t *testing.T) {
	t.Parallel()
	c := newCache(t, 0)
	e := ev(42, "line", `{"level":"error","code":503,"tags":["disk","io"],"msg":"disk full","n":{"a-b":1}}`)
	tests := []struct {
		expr string
		want bool
	}{
		{`type == "line"`, true},
		{`type == "other"`, false},
		{`stream == "app-log" && seq == 42`, true},
		{`seq > 41`, true},
		{`seq > 42`, false},
		{`data.level == "error"`, true},
		{`data.level == "info"`, false},
		{`data.code == 503`, true}, // a JSON number is a double, equal to the int
		{`data.code >= 500 && data.code < 600`, true},
		{`data.code > 503.5`, false},
		{`"disk" in data.tags`, true},
		{`data.tags.exists(t, t == "net")`, false},
		{`data.msg.contains("full")`, true},
		{`data.msg.matches("^disk")`, true},
		{`data.n["a-b"] == 1`, true},
		{`has(data.level)`, true},
		{`has(data.missing)`, false},
		{`time > timestamp("2026-01-01T00:00:00Z")`, true},
		{`time < timestamp("2026-01-01T00:00:00Z")`, false},
		// Evaluation errors are non-matches, never a failure.
		{`data.missing == "x"`, false},
		{`data.level.nested == 1`, false},
		{`data.code / 0.0 > 1.0 && data.nope`, false},
		{`data.level`, false}, // dyn, a string at run time: not a match
		{`data.tags.size() == 2`, true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			f, err := c.Get(tt.expr)
			if err != nil {
				t.Fatalf("Get(%q): %v", tt.expr, err)
			}
			if got := f.Match(e); got != tt.want {
				t.Errorf("Match(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestMatchDataNotAnObject(t *testing.T) {
	t.Parallel()
	c := newCache(t, 0)
	for _, tt := range []struct {
		data, expr string
		want       bool
	}{
		{`"plain"`, `data == "plain"`, true},
		{`7`, `data > 6`, true},
		{``, `data == null`, true},
		{`not json`, `data.x == 1`, false},
		{`[1,2,3]`, `data.size() == 3`, true},
	} {
		f, err := c.Get(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(ev(1, "x", tt.data)); got != tt.want {
			t.Errorf("data %s, %q: %v, want %v", tt.data, tt.expr, got, tt.want)
		}
	}
}

func TestControlMarkersPass(t *testing.T) {
	t.Parallel()
	f, err := newCache(t, 0).Get(`type == "never"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*event.Event{event.Gap("s", 1, 5), event.Offline("s", 5, "lost"), event.Reset("s", 9)} {
		if !f.Match(e) {
			t.Errorf("%s marker filtered out: a subscriber must learn about its position", e.Type)
		}
	}
}

func TestBadExpressions(t *testing.T) {
	t.Parallel()
	c := newCache(t, 0)
	long := make([]byte, MaxLength+1)
	for i := range long {
		long[i] = '1'
	}
	tests := []struct {
		expr         string
		line, column int
	}{
		{`type ==`, 1, 8},
		{`data.level == "x" &&`, 1, 21},
		{`unknown == 1`, 1, 1},
		{`type == "a" && nope`, 1, 16},
		{"type == \"a\" &&\n  seq >> 2", 2, 8},
		{`type`, 1, 1},       // a string, not a bool
		{`seq + 1`, 1, 1},    // an int
		{`seq == "x"`, 1, 5}, // no such overload
		{`data.level ==`, 1, 14},
		{"   ", 1, 1},
		{``, 1, 1},
		{string(long), 1, 1}, // over MaxLength
		{`"unterminated`, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.expr[:min(len(tt.expr), 30)], func(t *testing.T) {
			t.Parallel()
			_, err := c.Get(tt.expr)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Get(%q) = %v, want ErrInvalid", tt.expr, err)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Get(%q): %T is not *Error", tt.expr, err)
			}
			if fe.Line != tt.line || fe.Column != tt.column {
				t.Errorf("Get(%q): at %d:%d (%v), want %d:%d", tt.expr, fe.Line, fe.Column, err, tt.line, tt.column)
			}
		})
	}
	if c.Len() != 0 {
		t.Errorf("cache keeps %d refused expressions", c.Len())
	}
}

func TestCacheSharesOneProgram(t *testing.T) {
	t.Parallel()
	c := newCache(t, 0)
	var wg sync.WaitGroup
	got := make([]*Filter, 32)
	for i := range got {
		wg.Go(func() {
			f, err := c.Get(`data.level == "error"`)
			if err != nil {
				t.Error(err)
			}
			got[i] = f
		})
	}
	wg.Wait()
	for i, f := range got {
		if f != got[0] {
			t.Fatalf("caller %d got a second compiled filter for the same text", i)
		}
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newCache(t, 4)
	first, err := c.Get(`seq == 0`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.Get(`seq == ` + string(rune('1'+i%9)) + `0`); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() > 4 {
		t.Errorf("Len = %d, want at most 4", c.Len())
	}
	// An evicted filter still works for whoever holds it.
	if !first.Match(ev(0, "x", `{}`)) {
		t.Error("evicted filter stopped matching")
	}
}

// TestOneEvaluationPerEvent: N subscribers sharing an expression cost
// one evaluation per event, and two expressions two.
func TestOneEvaluationPerEvent(t *testing.T) {
	t.Parallel()
	c := newCache(t, 0)
	const subscribers, events = 100, 50
	evs := make([]*event.Event, events)
	for i := range evs {
		evs[i] = ev(uint64(i+1), "line", `{"n":`+string(rune('0'+i%10))+`}`)
	}
	exprs := []string{`data.n > 4`, `int(data.n) % 2 == 0`}
	var wg sync.WaitGroup
	for s := range subscribers {
		wg.Go(func() {
			f, err := c.Get(exprs[s%len(exprs)])
			if err != nil {
				t.Error(err)
				return
			}
			kept := f.Keep(append([]*event.Event(nil), evs...))
			if len(kept) != events/2 {
				t.Errorf("%q kept %d of %d", f, len(kept), events)
			}
		})
	}
	wg.Wait()
	for _, x := range exprs {
		f, _ := c.Get(x)
		if n := f.Evaluations(); n != events {
			t.Errorf("%q: %d evaluations for %d events and %d subscribers, want %d", x, n, events, subscribers/2, events)
		}
	}
}

func TestCostLimitIsANonMatch(t *testing.T) {
	t.Parallel()
	c := newCache(t, 0)
	// Each element visits every element: quadratic, beyond CostLimit for
	// a 200-element list.
	f, err := c.Get(`data.xs.all(a, data.xs.all(b, a + b >= 0.0))`)
	if err != nil {
		t.Fatal(err)
	}
	xs, _ := json.Marshal(map[string]any{"xs": make([]float64, 200)})
	if f.Match(ev(1, "x", string(xs))) {
		t.Error("an evaluation past the cost limit matched")
	}
	small, _ := json.Marshal(map[string]any{"xs": make([]float64, 5)})
	if !f.Match(ev(2, "x", string(small))) {
		t.Error("a cheap evaluation of the same filter did not match")
	}
}

func TestKeepNil(t *testing.T) {
	t.Parallel()
	var f *Filter
	evs := []*event.Event{ev(1, "a", `{}`)}
	if got := f.Keep(evs); len(got) != 1 {
		t.Errorf("a nil filter dropped events: %d", len(got))
	}
}
