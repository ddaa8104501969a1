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
	received []string // checkpoints each command ran on, in order
	batches  []int    // size of each CommandBatch call
	entered  chan int // see hold
	release  chan struct{}
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

// CommandBatch runs cmds one after another on the checkpoint the previous
// successful one left, as the SDK does. While held (hold), each call
// reports its size on entered and waits for a token on release; a call
// whose ctx ended meanwhile fails whole, as a cancelled RPC does.
func (r *counterRunner) CommandBatch(ctx context.Context, _, id string, _ json.RawMessage, checkpoint []byte, cmds []emitter.Cmd) ([]emitter.CmdOutcome, error) {
	r.mu.Lock()
	r.batches = append(r.batches, len(cmds))
	entered, release := r.entered, r.release
	r.mu.Unlock()
	if entered != nil {
		entered <- len(cmds)
		select {
		case <-release:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	outs := make([]emitter.CmdOutcome, len(cmds))
	for i, c := range cmds {
		res, err := r.command(id, c.Name, checkpoint)
		outs[i] = emitter.CmdOutcome{CommandResult: res, Err: err}
		if err == nil && res.Batch.Checkpoint != nil {
			checkpoint = res.Batch.Checkpoint
		}
	}
	return outs, nil
}

// hold makes every following CommandBatch wait for a token on the
// returned channel, after reporting its size on entered.
func (r *counterRunner) hold() (entered <-chan int, release chan<- struct{}) {
	e, rel := make(chan int, 64), make(chan struct{}, 64)
	r.mu.Lock()
	r.entered, r.release = e, rel
	r.mu.Unlock()
	return e, rel
}

// unhold ends hold.
func (r *counterRunner) unhold() {
	r.mu.Lock()
	r.entered, r.release = nil, nil
	r.mu.Unlock()
}

// lastReceived is the checkpoint the last command ran on.
func (r *counterRunner) lastReceived() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.received) == 0 {
		return ""
	}
	return r.received[len(r.received)-1]
}

func (r *counterRunner) batchSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.batches...)
}

// command "next" counts on from checkpoint; "fail" is a caller error.
func (r *counterRunner) command(id, name string, checkpoint []byte) (emitter.CommandResult, error) {
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
