package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
)

// counterRunner is a minimal honest Runner of one kind, "counter": its
// state is a decimal count kept only in the checkpoint the host passes
// in, so a wrong checkpoint shows as a wrong count. It starts no
// goroutines: tests deliver through the sink it was given, as a plugin
// run would.
type counterRunner struct {
	mu       sync.Mutex
	sinks    map[string]emitter.Sink
	starts   map[string]int
	stops    []string
	received []string // checkpoints passed to Command, in call order
}

func newRunner() *counterRunner {
	return &counterRunner{sinks: map[string]emitter.Sink{}, starts: map[string]int{}}
}

var errStart = errors.New("counter: start refused")

func (r *counterRunner) Describe(_ context.Context, kind string) (emitter.Kind, error) {
	if kind != "counter" {
		return emitter.Kind{}, emitter.ErrUnknownKind
	}
	return emitter.Kind{Name: kind, Commands: []emitter.CommandSpec{{Name: "next"}}}, nil
}

// Validate accepts an object with an optional boolean "refuse_start" and
// returns it compacted.
func (r *counterRunner) Validate(_ context.Context, kind string, config json.RawMessage) (json.RawMessage, error) {
	if kind != "counter" {
		return nil, emitter.ErrUnknownKind
	}
	var c map[string]any
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, &emitter.ValidationError{Fields: []emitter.FieldError{{Field: "config", Message: "must be an object"}}}
	}
	for k, v := range c {
		if _, ok := v.(bool); k != "refuse_start" || !ok {
			return nil, &emitter.ValidationError{Fields: []emitter.FieldError{{Field: k, Message: "unknown field"}}}
		}
	}
	return json.Marshal(c)
}

func (r *counterRunner) Start(_ context.Context, kind, id string, config json.RawMessage, sink emitter.Sink) error {
	if kind != "counter" {
		return emitter.ErrUnknownKind
	}
	var c struct {
		RefuseStart bool `json:"refuse_start"`
	}
	if err := json.Unmarshal(config, &c); err != nil || c.RefuseStart {
		return errStart
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sinks[id] = sink
	r.starts[id]++
	return nil
}

func (r *counterRunner) Stop(_ context.Context, _, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sinks, id)
	r.stops = append(r.stops, id)
	return nil
}

// Command "next" counts on from checkpoint; "fail" is a caller error.
func (r *counterRunner) Command(_ context.Context, _, id, name string, _ json.RawMessage, checkpoint []byte, _ json.RawMessage) (emitter.CommandResult, error) {
	r.mu.Lock()
	_, running := r.sinks[id]
	r.received = append(r.received, string(checkpoint))
	r.mu.Unlock()
	if !running {
		return emitter.CommandResult{}, emitter.ErrUnavailable
	}
	switch name {
	case "next":
	case "fail":
		return emitter.CommandResult{}, &emitter.CommandError{Code: "bad", Message: "asked to fail"}
	default:
		return emitter.CommandResult{}, emitter.ErrUnknownCommand
	}
	n := 0
	if len(checkpoint) > 0 {
		var err error
		if n, err = strconv.Atoi(string(checkpoint)); err != nil {
			return emitter.CommandResult{}, fmt.Errorf("counter: checkpoint %q: %w", checkpoint, err)
		}
	}
	n++
	data := json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))
	return emitter.CommandResult{
		Result: data,
		Batch:  emitter.Batch{Events: []event.Draft{{Type: "count", Data: data}}, Checkpoint: []byte(strconv.Itoa(n))},
	}, nil
}

func (r *counterRunner) sink(id string) emitter.Sink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sinks[id]
}

func (r *counterRunner) startCount(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[id]
}
