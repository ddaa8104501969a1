// Package sdktest drives an sdk.Plugin in-process through the real gRPC
// adapter (sdk.NewServer) over an in-memory connection, so a plugin's tests
// exercise the same conversions, schema validation and error mapping the
// host sees. Harness offers the calls one by one; Conformance checks the
// whole plugin contract in one call.
package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// HangGuard bounds every wait the harness does on its own (stopping runs,
// shutting down). It is a guard against a hung plugin, not a performance
// target.
const HangGuard = 10 * time.Second

// Harness is one plugin served over an in-memory gRPC connection.
type Harness struct {
	t      testing.TB
	client pluginpb.EmitterClient
}

// New serves p through sdk.NewServer and connects to it. Everything is
// shut down by t.Cleanup; a plugin whose Run ignores cancellation fails t
// there instead of hanging the test binary.
// A p that also implements sdk.GuestSource is served as both.
func New(t testing.TB, p sdk.Plugin) *Harness {
	t.Helper()
	return serve(t, func(log *slog.Logger) pluginpb.EmitterServer { return sdk.NewServer(p, log) })
}

// NewGuestSource serves a plugin that reports guests only, as
// sdk.ServeGuestSource does, with the same cleanup as New.
func NewGuestSource(t testing.TB, g sdk.GuestSource) *Harness {
	t.Helper()
	return serve(t, func(log *slog.Logger) pluginpb.EmitterServer { return sdk.NewGuestSourceServer(g, log) })
}

func serve(t testing.TB, adapter func(*slog.Logger) pluginpb.EmitterServer) *Harness {
	t.Helper()
	lw := &testWriter{t: t}
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelDebug}))

	lis := bufconn.Listen(1 << 20)
	// WaitForHandlers makes Stop wait for every Run handler, so no plugin
	// goroutine outlives the test.
	srv := grpc.NewServer(grpc.WaitForHandlers(true))
	pluginpb.RegisterEmitterServer(srv, adapter(log))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns nil after Stop
	}()

	conn, err := grpc.NewClient("passthrough:///sdktest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		<-served
		t.Fatalf("sdktest: dial: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		stopped := make(chan struct{})
		go func() { srv.Stop(); close(stopped) }()
		select {
		case <-stopped:
			<-served
		case <-time.After(HangGuard):
			t.Errorf("sdktest: plugin handlers still running %s after shutdown: Run must return when its ctx is done", HangGuard)
		}
		lw.close()
	})
	return &Harness{t: t, client: pluginpb.NewEmitterClient(conn)}
}

// Describe calls Describe through the adapter.
func (h *Harness) Describe(ctx context.Context) (sdk.Description, error) {
	resp, err := h.client.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return sdk.Description{}, fmt.Errorf("sdktest: describe: %w", err)
	}
	d := sdk.Description{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		Description:  resp.GetDescription(),
		ConfigSchema: resp.GetConfigSchema(),
		EventTypes:   resp.GetEventTypes(),
	}
	for _, c := range resp.GetCommands() {
		d.Commands = append(d.Commands, sdk.CommandSpec{Name: c.GetName(), Description: c.GetDescription()})
	}
	if resp.GetApiVersion() != sdk.APIVersion {
		return d, fmt.Errorf("sdktest: describe: api version %d, want %d", resp.GetApiVersion(), sdk.APIVersion)
	}
	return d, nil
}

// Validate calls Validate through the adapter (schema first, then the
// plugin). Field errors come back as *sdk.ValidationError.
func (h *Harness) Validate(ctx context.Context, config json.RawMessage) (json.RawMessage, error) {
	resp, err := h.client.Validate(ctx, &pluginpb.ValidateRequest{Config: config})
	if err != nil {
		return nil, fmt.Errorf("sdktest: validate: %w", err)
	}
	return validated(resp)
}

// validated is a Validate answer as the host reads it: the normalized
// config, or its field errors as *sdk.ValidationError.
func validated(resp *pluginpb.ValidateResponse) (json.RawMessage, error) {
	if errs := resp.GetErrors(); len(errs) > 0 {
		ve := &sdk.ValidationError{}
		for _, f := range errs {
			ve.Fields = append(ve.Fields, sdk.FieldError{Field: f.GetField(), Message: f.GetMessage()})
		}
		return nil, ve
	}
	return resp.GetNormalizedConfig(), nil
}

// Command calls Command through the adapter. An unknown command returns an
// error wrapping sdk.ErrUnknownCommand; a failure the caller caused
// returns *sdk.CommandError.
func (h *Harness) Command(ctx context.Context, inst sdk.Instance, name string, args json.RawMessage) (sdk.CommandResult, error) {
	resp, err := h.client.Command(ctx, &pluginpb.CommandRequest{
		InstanceId: inst.ID, Config: inst.Config, Checkpoint: inst.Checkpoint, Name: name, Args: args,
	})
	if err != nil {
		return sdk.CommandResult{}, fmt.Errorf("sdktest: command %s: %w", name, err)
	}
	switch code := resp.GetErrorCode(); code {
	case "":
	case sdk.CodeUnknownCommand:
		return sdk.CommandResult{}, fmt.Errorf("sdktest: command %s: %w: %s", name, sdk.ErrUnknownCommand, resp.GetErrorMessage())
	default:
		return sdk.CommandResult{}, &sdk.CommandError{Code: code, Message: resp.GetErrorMessage()}
	}
	return sdk.CommandResult{Result: resp.GetResult(), Batch: fromPBBatch(resp.GetBatch())}, nil
}

// BatchCommand is one command of a CommandBatch call.
type BatchCommand struct {
	Name string
	Args json.RawMessage
}

// BatchOutcome is one command's answer in a CommandBatch call; Err is set
// as Command would return it (a plugin failure is a plain error).
type BatchOutcome struct {
	Result sdk.CommandResult
	Err    error
}

// CommandBatch calls CommandBatch through the adapter: the commands run in
// order, each on the checkpoint the previous successful one left. The error
// is the call's own (transport); each command's is in its outcome.
func (h *Harness) CommandBatch(ctx context.Context, inst sdk.Instance, cmds []BatchCommand) ([]BatchOutcome, error) {
	req := &pluginpb.CommandBatchRequest{InstanceId: inst.ID, Config: inst.Config, Checkpoint: inst.Checkpoint}
	for _, c := range cmds {
		req.Commands = append(req.Commands, &pluginpb.BatchedCommand{Name: c.Name, Args: c.Args})
	}
	resp, err := h.client.CommandBatch(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sdktest: command batch: %w", err)
	}
	if n := len(resp.GetOutcomes()); n != len(cmds) {
		return nil, fmt.Errorf("sdktest: command batch of %d answered %d outcomes", len(cmds), n)
	}
	out := make([]BatchOutcome, len(cmds))
	for i, o := range resp.GetOutcomes() {
		name := cmds[i].Name
		switch code := o.GetErrorCode(); {
		case o.GetFailure() != "":
			out[i].Err = fmt.Errorf("sdktest: command %s: %s", name, o.GetFailure())
		case code == sdk.CodeUnknownCommand:
			out[i].Err = fmt.Errorf("sdktest: command %s: %w: %s", name, sdk.ErrUnknownCommand, o.GetErrorMessage())
		case code != "":
			out[i].Err = &sdk.CommandError{Code: code, Message: o.GetErrorMessage()}
		default:
			out[i].Result = sdk.CommandResult{Result: o.GetResult(), Batch: fromPBBatch(o.GetBatch())}
		}
	}
	return out, nil
}

// Instances reports how many instances the plugin is running (Heartbeat).
func (h *Harness) Instances(ctx context.Context) (int, error) {
	resp, err := h.client.Heartbeat(ctx, &pluginpb.HeartbeatRequest{})
	if err != nil {
		return 0, fmt.Errorf("sdktest: heartbeat: %w", err)
	}
	return int(resp.GetInstances()), nil
}

// fromPBBatch converts a wire batch; a checkpoint is non-nil exactly when
// the plugin set one, as the host sees it.
func fromPBBatch(pb *pluginpb.Batch) sdk.Batch {
	var b sdk.Batch
	if pb == nil {
		return b
	}
	if pb.GetHasCheckpoint() {
		b.Checkpoint = pb.GetCheckpoint()
		if b.Checkpoint == nil {
			b.Checkpoint = []byte{}
		}
	}
	if n := len(pb.GetEvents()); n > 0 {
		b.Events = make([]sdk.Event, n)
		for i, e := range pb.GetEvents() {
			b.Events[i] = sdk.Event{Type: e.GetType(), Data: e.GetData(), Time: time.Unix(0, e.GetTimeUnixNano())}
		}
	}
	return b
}

// testWriter sends the adapter's logs to t.Log until the harness closed,
// since t.Log after the test ended panics.
type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log("plugin: " + string(p))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
