package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
)

// Error codes a CommandResponse carries for failures the caller caused.
const (
	// CodeUnknownCommand is the error_code for a command the plugin does
	// not know (or a plugin without Commander).
	CodeUnknownCommand = "unknown_command"
)

// errRunEnded is the failure reported when Run returns nil although nobody
// asked the instance to stop: the contract says that is a failure, so the
// host restarts the instance from its checkpoint.
var errRunEnded = errors.New("plugin Run returned before the instance was stopped")

// server adapts a Plugin to the generated gRPC service. One server hosts
// many instances, keyed by instance id.
type server struct {
	pluginpb.UnimplementedEmitterServer

	p      Plugin // nil: the plugin serves a guest source only
	cmd    Commander
	desc   Description
	schema *configSchema
	log    *slog.Logger

	gs      GuestSource // nil: the plugin serves no guest source
	gdesc   GuestSourceDescription
	gschema *configSchema

	mu      sync.Mutex
	running map[string]*instanceRun
}

// instanceRun is one live Run call.
type instanceRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewServer returns the gRPC service for p. Serve uses it; tests and the
// sdktest harness use it directly to exercise a plugin in-process. The
// config schema from p.Describe is compiled once here; a schema that does
// not compile makes every Validate fail with that error. A p that also
// implements GuestSource serves it too.
func NewServer(p Plugin, log *slog.Logger) pluginpb.EmitterServer {
	g, _ := p.(GuestSource)
	return newServer(p, g, log)
}

func newServer(p Plugin, g GuestSource, log *slog.Logger) *server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{log: log, running: make(map[string]*instanceRun)}
	if p != nil {
		s.p, s.desc = p, p.Describe()
		s.schema = compileSchema(s.desc.ConfigSchema)
		s.cmd, _ = p.(Commander)
	}
	if g != nil {
		s.gs, s.gdesc = g, g.DescribeGuestSource()
		s.gschema = compileSchema(s.gdesc.ConfigSchema)
		if p == nil {
			s.desc = Description{Name: s.gdesc.Name, Version: s.gdesc.Version, Description: s.gdesc.Description}
		}
	}
	return s
}

func (s *server) Describe(context.Context, *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	resp := &pluginpb.DescribeResponse{
		Name:         s.desc.Name,
		Version:      s.desc.Version,
		ApiVersion:   APIVersion,
		ConfigSchema: s.desc.ConfigSchema,
		EventTypes:   s.desc.EventTypes,
		Description:  s.desc.Description,
	}
	if s.p != nil {
		resp.Roles = append(resp.Roles, RoleEmitter)
	}
	if s.gs != nil {
		resp.Roles = append(resp.Roles, RoleGuestSource)
		resp.GuestSourceSchema = s.gdesc.ConfigSchema
		resp.GuestSourceDescription = s.gdesc.Description
	}
	for _, c := range s.desc.Commands {
		resp.Commands = append(resp.Commands, &pluginpb.CommandSpec{Name: c.Name, Description: c.Description})
	}
	return resp, nil
}

func (s *server) Validate(ctx context.Context, req *pluginpb.ValidateRequest) (resp *pluginpb.ValidateResponse, err error) {
	defer s.recoverCall("Validate", "", &err)
	if s.p == nil {
		return nil, errNoEmitter(s.desc.Name)
	}
	return validateWith(ctx, s.schema, s.p.Validate, req.GetConfig())
}

// errNoEmitter answers the emitter calls of a plugin that reports guests
// only.
func errNoEmitter(name string) error {
	return status.Errorf(codes.FailedPrecondition, "plugin %s serves no emitter kind (it reports guests)", name)
}

// validateWith checks config against schema, then through validate.
func validateWith(ctx context.Context, schema *configSchema, validate func(context.Context, json.RawMessage) (json.RawMessage, error), raw []byte) (*pluginpb.ValidateResponse, error) {
	config := orEmptyObject(raw)
	fields, err := schema.validate(config)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "config schema: %v", err)
	}
	if len(fields) > 0 {
		return &pluginpb.ValidateResponse{Errors: toPBFields(fields)}, nil
	}
	norm, err := validate(ctx, json.RawMessage(config))
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		return &pluginpb.ValidateResponse{Errors: toPBFields(ve.Fields)}, nil
	case err != nil:
		return nil, status.Errorf(codes.Unknown, "validate: %v", err)
	}
	if len(norm) == 0 {
		norm = json.RawMessage(config)
	}
	return &pluginpb.ValidateResponse{NormalizedConfig: norm}, nil
}

// orEmptyObject treats a missing config as {} so plugins can always
// unmarshal it.
func orEmptyObject(config []byte) json.RawMessage {
	if len(config) == 0 {
		return json.RawMessage("{}")
	}
	return config
}

func toPBFields(fields []FieldError) []*pluginpb.FieldError {
	out := make([]*pluginpb.FieldError, 0, len(fields))
	for _, f := range fields {
		out = append(out, &pluginpb.FieldError{Field: f.Field, Message: f.Message})
	}
	return out
}

// Run runs one instance in the stream's goroutine until the host cancels
// the stream or calls Stop. A second Run for an id that is still running
// replaces the old run (after it ended): the host only does that when it
// restarts the instance, and two producers for one stream would duplicate.
func (s *server) Run(req *pluginpb.RunRequest, stream grpc.ServerStreamingServer[pluginpb.Batch]) (err error) {
	if s.p == nil {
		return errNoEmitter(s.desc.Name)
	}
	id := req.GetInstanceId()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	run, err := s.register(ctx, id, cancel)
	if err != nil {
		return err
	}
	defer s.unregister(id, run)
	defer s.recoverCall("Run", id, &err)

	inst := Instance{ID: id, Config: orEmptyObject(req.GetConfig()), Checkpoint: req.GetCheckpoint()}
	out := &streamOutput{stream: stream}
	err = s.p.Run(ctx, inst, out)
	switch {
	case ctx.Err() != nil:
		// Stopped by the host: whatever Run returned on the way out
		// (often a wrapped Canceled from Emit) is a clean stop.
		return nil
	case err == nil:
		return status.Error(codes.Aborted, errRunEnded.Error())
	default:
		s.log.Warn("instance failed", "instance", id, "error", err)
		return status.Errorf(codes.Aborted, "run %s: %v", id, err)
	}
}

// register records a run for id, first ending a previous run of the same id.
func (s *server) register(ctx context.Context, id string, cancel context.CancelFunc) (*instanceRun, error) {
	run := &instanceRun{cancel: cancel, done: make(chan struct{})}
	for range 100 { // bounded: each pass waits for one previous run to end
		s.mu.Lock()
		prev, ok := s.running[id]
		if !ok {
			s.running[id] = run
			s.mu.Unlock()
			return run, nil
		}
		s.mu.Unlock()
		prev.cancel()
		select {
		case <-prev.done:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil, status.Errorf(codes.ResourceExhausted, "instance %s: too many concurrent runs", id)
}

func (s *server) unregister(id string, run *instanceRun) {
	s.mu.Lock()
	if s.running[id] == run {
		delete(s.running, id)
	}
	s.mu.Unlock()
	close(run.done)
}

func (s *server) Stop(_ context.Context, req *pluginpb.StopRequest) (*pluginpb.StopResponse, error) {
	s.mu.Lock()
	run, ok := s.running[req.GetInstanceId()]
	s.mu.Unlock()
	if ok {
		run.cancel()
	}
	return &pluginpb.StopResponse{}, nil
}

func (s *server) Heartbeat(context.Context, *pluginpb.HeartbeatRequest) (*pluginpb.HeartbeatResponse, error) {
	s.mu.Lock()
	n := len(s.running)
	s.mu.Unlock()
	return &pluginpb.HeartbeatResponse{Instances: int32(n)}, nil
}

func (s *server) Command(ctx context.Context, req *pluginpb.CommandRequest) (resp *pluginpb.CommandResponse, err error) {
	defer s.recoverCall("Command", req.GetInstanceId(), &err)
	if s.cmd == nil {
		return commandFailure(CodeUnknownCommand, "plugin "+s.desc.Name+" accepts no commands"), nil
	}
	inst := Instance{ID: req.GetInstanceId(), Config: orEmptyObject(req.GetConfig()), Checkpoint: req.GetCheckpoint()}
	res, err := s.cmd.Command(ctx, inst, req.GetName(), req.GetArgs())
	var ce *CommandError
	switch {
	case errors.Is(err, ErrUnknownCommand):
		return commandFailure(CodeUnknownCommand, fmt.Sprintf("unknown command %q", req.GetName())), nil
	case errors.As(err, &ce):
		return commandFailure(ce.Code, ce.Message), nil
	case err != nil:
		return nil, status.Errorf(codes.Unknown, "command %s: %v", req.GetName(), err)
	}
	result, isEvent := resultOnWire(res, req.GetResultMayBeEvent())
	return &pluginpb.CommandResponse{Result: result, ResultIsEvent: isEvent, Batch: toPBBatch(res.Batch, time.Now())}, nil
}

// resultOnWire leaves the result out when the host allows it and the
// result is the first event's data, as a fibonacci step's is: at deep
// positions that is thousands of digits a command that would otherwise
// be encoded, copied through the pipe and decoded twice.
func resultOnWire(res CommandResult, mayBeEvent bool) (result []byte, isEvent bool) {
	if mayBeEvent && len(res.Result) > 0 && len(res.Batch.Events) > 0 && bytes.Equal(res.Result, res.Batch.Events[0].Data) {
		return nil, true
	}
	return res.Result, false
}

// MaxBatchCommands bounds the commands of one CommandBatch call; the host
// sends far fewer.
const MaxBatchCommands = 1024

// CommandBatch runs the commands in order through the plugin's Command, each
// on the checkpoint the previous successful one left, so plugin authors
// write Command alone. A failed command (caller error, plugin error or
// panic) changes nothing and is reported in its own outcome only.
//
// Only the last outcome that moved the checkpoint carries it: the host
// stores a batch's events with the checkpoint that holds after all of
// them, so the ones in between would only cross the pipe and be dropped
// (fibonacci's is two numbers of ~0.2·position digits each, per command).
func (s *server) CommandBatch(ctx context.Context, req *pluginpb.CommandBatchRequest) (*pluginpb.CommandBatchResponse, error) {
	cmds := req.GetCommands()
	if len(cmds) > MaxBatchCommands {
		return nil, status.Errorf(codes.InvalidArgument, "command batch of %d, at most %d", len(cmds), MaxBatchCommands)
	}
	inst := Instance{ID: req.GetInstanceId(), Config: orEmptyObject(req.GetConfig()), Checkpoint: req.GetCheckpoint()}
	resp := &pluginpb.CommandBatchResponse{Outcomes: make([]*pluginpb.CommandOutcome, 0, len(cmds))}
	var last *pluginpb.Batch // the latest outcome's batch that moved the checkpoint
	for _, c := range cmds {
		if err := ctx.Err(); err != nil {
			// The host gave up on the call: it reads no outcome.
			return nil, status.FromContextError(err).Err()
		}
		out := s.batchedCommand(ctx, inst, c.GetName(), c.GetArgs(), req.GetResultMayBeEvent())
		if b := out.GetBatch(); b.GetHasCheckpoint() {
			inst.Checkpoint = b.GetCheckpoint()
			if last != nil {
				last.Checkpoint, last.HasCheckpoint = nil, false
			}
			last = b
		}
		resp.Outcomes = append(resp.Outcomes, out)
	}
	return resp, nil
}

// batchedCommand is one command of a batch; a panic fails this command only.
func (s *server) batchedCommand(ctx context.Context, inst Instance, name string, args json.RawMessage, mayBeEvent bool) (out *pluginpb.CommandOutcome) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("plugin panic", "call", "CommandBatch", "instance", inst.ID, "command", name,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = &pluginpb.CommandOutcome{Failure: fmt.Sprintf("plugin panic in command %s: %v", name, r)}
		}
	}()
	if s.cmd == nil {
		return &pluginpb.CommandOutcome{ErrorCode: CodeUnknownCommand, ErrorMessage: "plugin " + s.desc.Name + " accepts no commands"}
	}
	res, err := s.cmd.Command(ctx, inst, name, args)
	var ce *CommandError
	switch {
	case errors.Is(err, ErrUnknownCommand):
		return &pluginpb.CommandOutcome{ErrorCode: CodeUnknownCommand, ErrorMessage: fmt.Sprintf("unknown command %q", name)}
	case errors.As(err, &ce):
		return &pluginpb.CommandOutcome{ErrorCode: ce.Code, ErrorMessage: ce.Message}
	case err != nil:
		return &pluginpb.CommandOutcome{Failure: fmt.Sprintf("command %s: %v", name, err)}
	}
	result, isEvent := resultOnWire(res, mayBeEvent)
	return &pluginpb.CommandOutcome{Result: result, ResultIsEvent: isEvent, Batch: toPBBatch(res.Batch, time.Now())}
}

func commandFailure(code, msg string) *pluginpb.CommandResponse {
	return &pluginpb.CommandResponse{ErrorCode: code, ErrorMessage: msg}
}

// recoverCall turns a panic in plugin code into a gRPC error for this call
// only, so one bad instance does not take down the others.
func (s *server) recoverCall(call, id string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.log.Error("plugin panic", "call", call, "instance", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*err = status.Errorf(codes.Internal, "plugin panic in %s: %v", call, r)
}

// streamOutput is the Output handed to Plugin.Run.
type streamOutput struct {
	mu     sync.Mutex // grpc streams allow one sender at a time
	stream grpc.ServerStreamingServer[pluginpb.Batch]
}

func (o *streamOutput) Emit(ctx context.Context, b Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := o.stream.Context().Err(); err != nil {
		return fmt.Errorf("emit: instance stopped: %w", err)
	}
	pb := toPBBatch(b, time.Now())
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.stream.Send(pb); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// toPBBatch converts b, stamping now on events without a time.
func toPBBatch(b Batch, now time.Time) *pluginpb.Batch {
	pb := &pluginpb.Batch{Checkpoint: b.Checkpoint, HasCheckpoint: b.Checkpoint != nil}
	if len(b.Events) == 0 {
		return pb
	}
	// One backing array for all events: a batch is the unit of work.
	evs := make([]pluginpb.Event, len(b.Events))
	pb.Events = make([]*pluginpb.Event, len(b.Events))
	nowNano := now.UnixNano()
	for i, e := range b.Events {
		t := nowNano
		if !e.Time.IsZero() {
			t = e.Time.UnixNano()
		}
		evs[i].Type, evs[i].Data, evs[i].TimeUnixNano = e.Type, e.Data, t
		pb.Events[i] = &evs[i]
	}
	return pb
}
