package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// ValidateGuestSource calls ValidateGuestSource through the adapter
// (schema first, then the plugin), as the host does when it loads a
// `type: plugin` guest source. Field errors come back as
// *sdk.ValidationError.
func (h *Harness) ValidateGuestSource(ctx context.Context, config json.RawMessage) (json.RawMessage, error) {
	resp, err := h.client.ValidateGuestSource(ctx, &pluginpb.ValidateRequest{Config: config})
	if err != nil {
		return nil, fmt.Errorf("sdktest: validate guest source: %w", err)
	}
	return validated(resp)
}

// Watch is one running guest source. One goroutine reads its stream; it
// ends when the stream does, which Stop (or the harness cleanup)
// guarantees.
type Watch struct {
	cancel    context.CancelFunc
	snapshots chan []sdk.Guest
	done      chan struct{} // closed when the stream ended; err is then set
	err       error
}

// WatchGuests starts the guest source on config (normalize it with
// ValidateGuestSource first, as the host does). Errors surface from Next.
func (h *Harness) WatchGuests(ctx context.Context, config json.RawMessage) *Watch {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watch{cancel: cancel, snapshots: make(chan []sdk.Guest), done: make(chan struct{})}
	stream, err := h.client.WatchGuests(ctx, &pluginpb.WatchGuestsRequest{Config: config})
	if err != nil {
		w.err = fmt.Errorf("sdktest: watch guests: %w", err)
		close(w.done)
		return w
	}
	go w.read(ctx, stream)
	h.t.Cleanup(w.Stop)
	return w
}

func (w *Watch) read(ctx context.Context, stream grpc.ServerStreamingClient[pluginpb.GuestSnapshot]) {
	defer close(w.done)
	for {
		pb, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			w.err = ErrEnded
			return
		}
		if err != nil {
			w.err = fmt.Errorf("sdktest: watch guests: %w", err)
			return
		}
		select {
		case w.snapshots <- sdk.FromPBSnapshot(pb):
		case <-ctx.Done(): // stopped: Recv fails next
		}
	}
}

// Next returns the next reported set of guests, or the stream's error
// once it ended (ErrEnded when the plugin ended it without one, which the
// host takes as a failure).
func (w *Watch) Next(ctx context.Context) ([]sdk.Guest, error) {
	select {
	case gs := <-w.snapshots:
		return gs, nil
	case <-w.done:
		return nil, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Until reads reports until ok accepts one and returns it; it fails when
// the stream ends or ctx is done first.
func (w *Watch) Until(ctx context.Context, ok func([]sdk.Guest) bool) ([]sdk.Guest, error) {
	for {
		gs, err := w.Next(ctx)
		if err != nil {
			return nil, err
		}
		if ok(gs) {
			return gs, nil
		}
	}
}

// Stop cancels the watch, as the host does when the source is removed,
// and waits for the plugin's WatchGuests to return (bounded by HangGuard).
func (w *Watch) Stop() {
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(HangGuard): // the harness cleanup reports a hung plugin
	}
}
