package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/event"
	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// instance is one supervised emitter instance.
type instance struct {
	id     string
	config json.RawMessage
	sink   emitter.Sink
	cancel context.CancelFunc
	done   chan struct{}
}

func (k *kindProc) startInstance(hostCtx context.Context, wg *sync.WaitGroup, id string, config json.RawMessage, sink emitter.Sink) error {
	ctx, cancel := context.WithCancel(hostCtx)
	inst := &instance{id: id, config: config, sink: sink, cancel: cancel, done: make(chan struct{})}
	k.mu.Lock()
	if _, dup := k.instances[id]; dup {
		k.mu.Unlock()
		cancel()
		return fmt.Errorf("instance %s: %w", id, ErrAlreadyStarted)
	}
	k.instances[id] = inst
	k.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(inst.done)
		k.runInstance(ctx, inst)
	}()
	return nil
}

func (k *kindProc) stopInstance(ctx context.Context, id string) error {
	k.mu.Lock()
	inst, ok := k.instances[id]
	delete(k.instances, id)
	k.mu.Unlock()
	if !ok {
		return nil
	}
	inst.cancel()
	select {
	case <-inst.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %s: %w", id, ctx.Err())
	}
}

// runInstance keeps one instance running until ctx ends: after any
// failure it waits for a live process and restarts from the checkpoint.
func (k *kindProc) runInstance(ctx context.Context, inst *instance) {
	log := k.h.log.With("plugin", k.src.Name, "instance", inst.id)
	failures := 0
	for {
		p, err := k.waitRunning(ctx)
		if err != nil {
			return
		}
		delivered, err := k.runOnce(ctx, p, inst)
		if ctx.Err() != nil {
			return
		}
		if processGone(p, err) {
			// The supervisor restarts the process; the next run waits
			// for it, so no instance backoff on top.
			p.markDead(fmt.Errorf("instance %s stream: %w", inst.id, err))
			continue
		}
		if delivered {
			failures = 0
		}
		failures++
		log.Warn("instance failed; restarting from checkpoint", "error", err)
		if !sleep(ctx, backoff(k.h.cfg.BackoffBase, k.h.cfg.BackoffMax, failures)) {
			return
		}
	}
}

// processGone tells a dead transport (the process is gone or going) from
// an instance failure the plugin reported (Aborted, Internal, ...).
func processGone(p *proc, err error) bool {
	return p.isGone() || status.Code(err) == codes.Unavailable
}

// runOnce runs one Run stream from the durable checkpoint, delivering
// batches one at a time: the next batch is not read before Deliver
// returned, which is the back-pressure the plugin feels in Emit.
func (k *kindProc) runOnce(ctx context.Context, p *proc, inst *instance) (delivered bool, err error) {
	cp, err := inst.sink.Checkpoint(ctx)
	if err != nil {
		return false, fmt.Errorf("load checkpoint: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnDeath := context.AfterFunc(p.gone, cancel)
	defer stopOnDeath()

	stream, err := p.rpc.Run(sctx, &pluginpb.RunRequest{InstanceId: inst.id, Config: inst.config, Checkpoint: cp})
	if err != nil {
		return false, fmt.Errorf("run: %w", err)
	}
	for {
		pb, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return delivered, errors.New("run stream ended without a stop")
		}
		if err != nil {
			return delivered, fmt.Errorf("run stream: %w", err)
		}
		if err := inst.sink.Deliver(ctx, toBatch(pb)); err != nil {
			return delivered, fmt.Errorf("deliver: %w", err)
		}
		delivered = true
	}
}

func toBatch(pb *pluginpb.Batch) emitter.Batch {
	b := emitter.Batch{}
	if pb.GetHasCheckpoint() {
		b.Checkpoint = pb.GetCheckpoint()
		if b.Checkpoint == nil {
			b.Checkpoint = []byte{}
		}
	}
	if evs := pb.GetEvents(); len(evs) > 0 {
		b.Events = make([]event.Draft, len(evs))
		for i, e := range evs {
			b.Events[i] = event.Draft{Type: e.GetType(), Time: time.Unix(0, e.GetTimeUnixNano()).UTC(), Data: e.GetData()}
		}
	}
	return b
}

func (k *kindProc) validate(ctx context.Context, config json.RawMessage) (json.RawMessage, error) {
	p, err := k.ready(ctx)
	if err != nil {
		return nil, fmt.Errorf("validate %s: %w", k.src.Name, err)
	}
	resp, err := p.rpc.Validate(ctx, &pluginpb.ValidateRequest{Config: config})
	if err != nil {
		return nil, fmt.Errorf("validate %s: %w", k.src.Name, rpcErr(err))
	}
	if len(resp.GetErrors()) > 0 {
		ve := &emitter.ValidationError{}
		for _, f := range resp.GetErrors() {
			ve.Fields = append(ve.Fields, emitter.FieldError{Field: f.GetField(), Message: f.GetMessage()})
		}
		return nil, ve
	}
	return resp.GetNormalizedConfig(), nil
}

// rpcErr marks transport failures as ErrUnavailable so callers answer 503.
func rpcErr(err error) error {
	if status.Code(err) == codes.Unavailable {
		return fmt.Errorf("%w: %w", emitter.ErrUnavailable, err)
	}
	return err
}
