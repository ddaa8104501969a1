// Package filter compiles the expressions subscribers pass as ?filter=
// (CEL, github.com/google/cel-go) over an event's envelope and JSON data,
// and evaluates them once per event for every subscriber that shares one.
//
// An expression sees the envelope as variables, stream (string), seq
// (int), type (string) and time (timestamp), and the event's JSON data as
// data (a map for an object: data.level, data["a-b"]; a JSON number is a
// double, compared with ints as numbers). It must be boolean. A Cache
// compiles each distinct text once; a Filter's verdict on an event is
// kept on the event (event.Verdict), so N subscribers of one expression
// cost one evaluation per event, and the data is decoded once per event
// for all expressions. An evaluation error on one event (a field that is
// absent, a cost beyond the limit, a non-boolean result) is a non-match.
package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/sidestream/sidestream/core/event"
)

// Limits on what an expression may be and cost, so a network-facing
// parameter can neither make a huge program nor a slow one.
const (
	// MaxLength bounds an expression's text (code points).
	MaxLength = 2048
	// maxRecursion bounds the parser's nesting.
	maxRecursion = 64
	// CostLimit bounds one evaluation (CEL's runtime cost units: about
	// one per operation, one per element a comprehension visits); past
	// it the evaluation stops and the event does not match.
	CostLimit = 10_000
)

// ErrInvalid is wrapped by every refusal of an expression (*Error).
var ErrInvalid = errors.New("invalid filter")

// Error is an expression refused at compile time, with the position
// (1-based line and column of the expression text) CEL names.
type Error struct {
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid filter at %d:%d: %s", e.Line, e.Column, e.Msg)
}

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Filter is one compiled expression, safe for concurrent use.
type Filter struct {
	text  string
	prg   cel.Program
	evals atomic.Uint64
	// id names the filter's verdicts on events (event.Verdict): never
	// reused, so a verdict is never taken for another filter's.
	id uint64
}

// lastID numbers the filters compiled by this process.
var lastID atomic.Uint64

// String returns the expression's text.
func (f *Filter) String() string { return f.text }

// Evaluations returns how many times the program ran (tests, metrics).
func (f *Filter) Evaluations() uint64 { return f.evals.Load() }

// Match reports whether e passes the filter. Control markers (gap,
// offline, reset) always pass: they tell the subscriber about its
// position, not about the stream's content. The verdict is computed once
// per event and shared by every caller with the same Filter.
func (f *Filter) Match(e *event.Event) bool {
	if e.IsControl() {
		return true
	}
	return e.Verdict(f.id, f.verdict)
}

// verdict evaluates the program on e: false for any error or a result
// that is not a boolean true.
func (f *Filter) verdict(e *event.Event) bool {
	f.evals.Add(1)
	out, _, err := f.prg.Eval(activationOf(e))
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

// Keep filters evs in place, keeping the events that match, and returns
// the kept prefix (nil f: evs as is).
func (f *Filter) Keep(evs []*event.Event) []*event.Event {
	if f == nil {
		return evs
	}
	kept := evs[:0]
	for _, e := range evs {
		if f.Match(e) {
			kept = append(kept, e)
		}
	}
	clear(evs[len(kept):]) // no references beyond the kept prefix
	return kept
}

// dataKey names the decoded activation in event.Memo: one decode of the
// data per event for every expression.
type dataKey struct{}

// activationOf returns e's variables, decoded once per event.
func activationOf(e *event.Event) interpreter.Activation {
	return e.Memo(dataKey{}, newActivation).(*activation)
}

// activation resolves the variables of one event.
type activation struct {
	e    *event.Event
	data any
}

func newActivation(e *event.Event) any {
	a := &activation{e: e}
	if len(e.Data) > 0 {
		// Data that is not JSON has no fields: data.x is then an error,
		// so a non-match.
		_ = json.Unmarshal(e.Data, &a.data)
	}
	return a
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "stream":
		return a.e.Stream, true
	case "seq":
		return int64(a.e.Seq), true
	case "type":
		return a.e.Type, true
	case "time":
		return a.e.Time, true
	case "data":
		return a.data, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// newEnv declares the variables an expression sees.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("stream", cel.StringType),
		cel.Variable("seq", cel.IntType),
		cel.Variable("type", cel.StringType),
		cel.Variable("time", cel.TimestampType),
		cel.Variable("data", cel.DynType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxLength),
		cel.ParserRecursionLimit(maxRecursion),
	)
}

// compile checks text and builds its program.
func compile(env *cel.Env, text string) (*Filter, error) {
	if strings.TrimSpace(text) == "" {
		return nil, &Error{Line: 1, Column: 1, Msg: "empty expression"}
	}
	ast, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		errs := iss.Errors()
		first := errs[0]
		msg := first.Message
		if len(errs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
		}
		return nil, &Error{Line: max(first.Location.Line(), 1), Column: max(first.Location.Column()+1, 1), Msg: msg}
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the expression is of type %s, a filter must be bool", t)}
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		// A program that does not build from a checked AST: a constant
		// folded to an error, a regex too large.
		return nil, &Error{Line: 1, Column: 1, Msg: err.Error()}
	}
	return &Filter{text: text, prg: prg, id: lastID.Add(1)}, nil
}
