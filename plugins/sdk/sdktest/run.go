package sdktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// ErrEnded is returned by Next once the run's stream has ended cleanly
// (after Stop or cancellation).
var ErrEnded = errors.New("sdktest: run ended")

// Run is one running instance. One goroutine reads its stream; it ends
// when the stream does, which Stop (or the harness cleanup) guarantees.
type Run struct {
	h       *Harness
	id      string
	cancel  context.CancelFunc
	batches chan *pluginpb.Batch
	done    chan struct{} // closed when the stream ended; err is then set
	err     error         // nil: the plugin ended the stream cleanly

	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: the reader drops batches
}

// Run starts inst through the adapter. It does not wait for events; errors
// (a config the plugin rejects, a failing Run) surface from Next and Wait.
// Cancelling ctx cancels the run, as the host does when it hangs up.
func (h *Harness) Run(ctx context.Context, inst sdk.Instance) *Run {
	ctx, cancel := context.WithCancel(ctx)
	r := &Run{
		h: h, id: inst.ID, cancel: cancel,
		batches:  make(chan *pluginpb.Batch),
		done:     make(chan struct{}),
		stopping: make(chan struct{}),
	}
	stream, err := h.client.Run(ctx, &pluginpb.RunRequest{
		InstanceId: inst.ID, Config: inst.Config, Checkpoint: inst.Checkpoint,
	})
	if err != nil {
		r.err = fmt.Errorf("sdktest: run %s: %w", inst.ID, err)
		close(r.done)
		return r
	}
	go r.read(ctx, stream)
	h.t.Cleanup(r.Stop)
	return r
}

func (r *Run) read(ctx context.Context, stream grpc.ServerStreamingClient[pluginpb.Batch]) {
	defer close(r.done)
	for {
		pb, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			r.err = fmt.Errorf("sdktest: run %s: %w", r.id, err)
			return
		}
		select {
		case r.batches <- pb:
		case <-r.stopping: // nobody reads any more: drain until the end
		case <-ctx.Done(): // the stream is cancelled; Recv fails next
		}
	}
}

// Next returns the next batch. Once the stream ended it returns ErrEnded
// (clean end) or the stream's error.
func (r *Run) Next(ctx context.Context) (sdk.Batch, error) {
	select {
	case pb := <-r.batches:
		return fromPBBatch(pb), nil
	case <-r.done:
		if r.err != nil {
			return sdk.Batch{}, r.err
		}
		return sdk.Batch{}, ErrEnded
	case <-ctx.Done():
		return sdk.Batch{}, fmt.Errorf("sdktest: next: %w", ctx.Err())
	}
}

// Stop asks the plugin to stop the instance (the Stop RPC, as the host
// does, repeated until it takes) and waits until the stream ended, at most HangGuard; after that it
// cancels the call. Use Wait to learn how the run ended. Stop is
// idempotent and safe to call from any goroutine.
func (r *Run) Stop() {
	r.stopOnce.Do(func() {
		close(r.stopping)
		ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
		defer cancel()
		// Repeat the (idempotent) Stop: one sent before the adapter
		// registered the run finds nothing to stop.
	wait:
		for range 1000 {
			_, _ = r.h.client.Stop(ctx, &pluginpb.StopRequest{InstanceId: r.id})
			select {
			case <-r.done:
				break wait
			case <-ctx.Done():
				break wait
			case <-time.After(20 * time.Millisecond):
			}
		}
		r.cancel()
		<-r.done // the cancelled stream fails Recv at once
	})
}

// Wait waits for the run to end and returns nil if the plugin ended it
// cleanly, or the stream's error (which, after Stop gave up waiting, is
// the cancellation).
func (r *Run) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("sdktest: wait: %w", ctx.Err())
	}
}

// Done is closed once the run's stream has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// waitInstances polls Heartbeat until the plugin runs at most n instances;
// bounded by ctx and by a count.
func (h *Harness) waitInstances(ctx context.Context, n int) error {
	for range 2000 {
		got, err := h.Instances(ctx)
		if err != nil {
			return err
		}
		if got <= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sdktest: still %d instances running (want ≤ %d): %w", got, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("sdktest: instances did not drop to %d", n)
}

// started waits until the plugin runs an instance, or r ended (then it
// returns how). Bounded by ctx and by a count.
func (h *Harness) started(ctx context.Context, r *Run) error {
	for range 2000 {
		select {
		case <-r.done:
			if r.err != nil {
				return r.err
			}
			return ErrEnded
		default:
		}
		n, err := h.Instances(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sdktest: run never started: %w", ctx.Err())
		case <-r.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
	return errors.New("sdktest: run never started")
}
