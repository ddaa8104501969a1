package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter emits config.count events per batch, forever, numbering them
// from the checkpoint. Instance "panic" panics; "quit" returns nil at once.
type counter struct{}

func (counter) Describe() sdk.Description {
	return sdk.Description{
		Name: "counter", Version: "0.1.0",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{
			"rate":{"type":"integer","minimum":1},
			"name":{"type":"string","minLength":2}},
			"required":["rate"],"additionalProperties":false}`),
		Commands: []sdk.CommandSpec{{Name: "add", Description: "adds"}},
	}
}

func (counter) Validate(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
	var v struct {
		Rate int    `json:"rate"`
		Name string `json:"name"`
	}
	_ = json.Unmarshal(c, &v)
	if v.Rate == 13 {
		return nil, sdk.Invalid("rate", "unlucky")
	}
	if v.Name == "" {
		v.Name = "default"
	}
	return json.Marshal(v)
}

func (counter) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	switch inst.ID {
	case "panic":
		panic("boom")
	case "quit":
		return nil
	case "fail":
		return errors.New("upstream gone")
	}
	n, _ := strconv.Atoi(string(inst.Checkpoint))
	for range 1_000_000 {
		n++
		err := out.Emit(ctx, sdk.Batch{Events: []sdk.Event{{Type: "n", Data: json.RawMessage(strconv.Itoa(n))}}, Checkpoint: []byte(strconv.Itoa(n))})
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

type commander struct{ counter }

func (commander) Command(_ context.Context, inst sdk.Instance, name string, args json.RawMessage) (sdk.CommandResult, error) {
	switch name {
	case "add":
		n, _ := strconv.Atoi(string(inst.Checkpoint))
		var d int
		if err := json.Unmarshal(args, &d); err != nil {
			return sdk.CommandResult{}, &sdk.CommandError{Code: "bad_args", Message: "args must be an integer"}
		}
		n += d
		s := strconv.Itoa(n)
		return sdk.CommandResult{Result: json.RawMessage(s), Batch: sdk.Batch{Events: []sdk.Event{{Type: "n", Data: json.RawMessage(s)}}, Checkpoint: []byte(s)}}, nil
	case "panic":
		panic("command boom")
	}
	return sdk.CommandResult{}, fmt.Errorf("%w: %s", sdk.ErrUnknownCommand, name)
}

// dial serves p on an in-memory gRPC connection.
func dial(t *testing.T, p sdk.Plugin) pluginpb.EmitterClient {
	t.Helper()
	return dialServer(t, sdk.NewServer(p, nil))
}

// dialServer serves an adapter on an in-memory gRPC connection.
func dialServer(t *testing.T, adapter pluginpb.EmitterServer) pluginpb.EmitterClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pluginpb.RegisterEmitterServer(srv, adapter)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///buf",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop() })
	return pluginpb.NewEmitterClient(conn)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := dial(t, counter{})
	tests := []struct {
		name   string
		config string
		norm   string
		errs   map[string]bool // fields expected in errors
	}{
		{name: "ok normalized", config: `{"rate":5}`, norm: `{"rate":5,"name":"default"}`},
		{name: "schema errors all reported", config: `{"rate":0,"name":"x","extra":1}`, errs: map[string]bool{"rate": true, "name": true, "extra": true}},
		{name: "missing required", config: `{}`, errs: map[string]bool{"rate": true}},
		{name: "empty config is an empty object", config: ``, errs: map[string]bool{"rate": true}},
		{name: "not json", config: `{`, errs: map[string]bool{"": true}},
		{name: "plugin validation error", config: `{"rate":13}`, errs: map[string]bool{"rate": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Validate(ctxT(t), &pluginpb.ValidateRequest{Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, fe := range resp.Errors {
				if fe.Message == "" {
					t.Errorf("field %q: empty message", fe.Field)
				}
				got[fe.Field] = true
			}
			if fmt.Sprint(got) != fmt.Sprint(orEmpty(tt.errs)) {
				t.Fatalf("error fields = %v (%v), want %v", got, resp.Errors, tt.errs)
			}
			if tt.norm != "" && string(resp.NormalizedConfig) != tt.norm {
				t.Fatalf("normalized = %s, want %s", resp.NormalizedConfig, tt.norm)
			}
		})
	}
}

func orEmpty(m map[string]bool) map[string]bool {
	if m == nil {
		return map[string]bool{}
	}
	return m
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	resp, err := dial(t, counter{}).Describe(ctxT(t), &pluginpb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Name != "counter" || resp.ApiVersion != sdk.APIVersion || len(resp.Commands) != 1 || len(resp.ConfigSchema) == 0 {
		t.Fatalf("describe = %v", resp)
	}
}

func TestRunStopHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	c := dial(t, counter{})
	stream, err := c.Run(ctx, &pluginpb.RunRequest{InstanceId: "a", Config: []byte(`{"rate":1}`), Checkpoint: []byte("41")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Events[0].Data) != "42" || string(b.Checkpoint) != "42" || !b.HasCheckpoint || b.Events[0].TimeUnixNano == 0 {
		t.Fatalf("first batch = %v, want event 42 resumed from checkpoint 41 with a time", b)
	}
	hb, err := c.Heartbeat(ctx, &pluginpb.HeartbeatRequest{})
	if err != nil || hb.Instances != 1 {
		t.Fatalf("heartbeat = %v, %v; want 1 instance", hb, err)
	}
	if _, err := c.Stop(ctx, &pluginpb.StopRequest{InstanceId: "a"}); err != nil {
		t.Fatal(err)
	}
	for range 100_000 {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if err != io.EOF {
		t.Fatalf("after Stop: %v, want clean end of stream", err)
	}
	hb, err = c.Heartbeat(ctx, &pluginpb.HeartbeatRequest{})
	if err != nil || hb.Instances != 0 {
		t.Fatalf("heartbeat = %v, %v; want 0 instances", hb, err)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	c := dial(t, counter{})
	// A healthy instance next to the failing ones must keep streaming.
	healthy, err := c.Run(ctx, &pluginpb.RunRequest{InstanceId: "ok", Config: []byte(`{"rate":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		code codes.Code
	}{{"panic", codes.Internal}, {"quit", codes.Aborted}, {"fail", codes.Aborted}} {
		s, err := c.Run(ctx, &pluginpb.RunRequest{InstanceId: tt.id})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		if status.Code(err) != tt.code {
			t.Errorf("%s: err = %v, want code %v", tt.id, err, tt.code)
		}
	}
	for range 3 {
		if _, err := healthy.Recv(); err != nil {
			t.Fatalf("healthy instance after others failed: %v", err)
		}
	}
}

func TestRunSameIDReplaces(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	c := dial(t, counter{})
	first, err := c.Run(ctx, &pluginpb.RunRequest{InstanceId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recv(); err != nil {
		t.Fatal(err)
	}
	second, err := c.Run(ctx, &pluginpb.RunRequest{InstanceId: "x", Checkpoint: []byte("100")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := second.Recv()
	if err != nil || string(b.Checkpoint) != "101" {
		t.Fatalf("second run: %v, %v", b, err)
	}
	hb, _ := c.Heartbeat(ctx, &pluginpb.HeartbeatRequest{})
	if hb.GetInstances() != 1 {
		t.Fatalf("instances = %d, want 1 (old run replaced)", hb.GetInstances())
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		p        sdk.Plugin
		cmd      string
		args     string
		result   string
		code     string
		grpcCode codes.Code
	}{
		{name: "ok", p: commander{}, cmd: "add", args: "2", result: "7"},
		{name: "bad args", p: commander{}, cmd: "add", args: `"x"`, code: "bad_args"},
		{name: "unknown", p: commander{}, cmd: "nope", code: sdk.CodeUnknownCommand},
		{name: "no commander", p: counter{}, cmd: "add", args: "1", code: sdk.CodeUnknownCommand},
		{name: "panic", p: commander{}, cmd: "panic", grpcCode: codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := dial(t, tt.p).Command(ctxT(t), &pluginpb.CommandRequest{InstanceId: "i", Checkpoint: []byte("5"), Name: tt.cmd, Args: []byte(tt.args)})
			if status.Code(err) != tt.grpcCode {
				t.Fatalf("err = %v, want %v", err, tt.grpcCode)
			}
			if resp.GetErrorCode() != tt.code || (tt.code != "" && resp.GetErrorMessage() == "") {
				t.Fatalf("error code = %q (%q), want %q", resp.GetErrorCode(), resp.GetErrorMessage(), tt.code)
			}
			if tt.result != "" && (string(resp.Result) != tt.result || string(resp.Batch.GetCheckpoint()) != tt.result || len(resp.Batch.GetEvents()) != 1) {
				t.Fatalf("resp = %v", resp)
			}
		})
	}
}

// A result that is the same bytes as the command's first event crosses
// the pipe once, but only for a host that asked for that (an older host
// would read an empty result).
func TestResultSentOnceWhenItIsTheEvent(t *testing.T) {
	t.Parallel()
	for _, allowed := range []bool{false, true} {
		t.Run(fmt.Sprint("allowed=", allowed), func(t *testing.T) {
			t.Parallel()
			c := dial(t, commander{})
			one, err := c.Command(ctxT(t), &pluginpb.CommandRequest{InstanceId: "i", Checkpoint: []byte("5"), Name: "add", Args: []byte("2"), ResultMayBeEvent: allowed})
			if err != nil {
				t.Fatal(err)
			}
			batch, err := c.CommandBatch(ctxT(t), &pluginpb.CommandBatchRequest{InstanceId: "i", Checkpoint: []byte("5"), ResultMayBeEvent: allowed,
				Commands: []*pluginpb.BatchedCommand{{Name: "add", Args: []byte("2")}, {Name: "add", Args: []byte("3")}}})
			if err != nil {
				t.Fatal(err)
			}
			type answer struct {
				result  []byte
				isEvent bool
				events  []*pluginpb.Event
			}
			got := []answer{{one.GetResult(), one.GetResultIsEvent(), one.GetBatch().GetEvents()}}
			for _, o := range batch.GetOutcomes() {
				got = append(got, answer{o.GetResult(), o.GetResultIsEvent(), o.GetBatch().GetEvents()})
			}
			for i, a := range got {
				want := []string{"7", "7", "10"}[i]
				if len(a.events) != 1 || string(a.events[0].GetData()) != want {
					t.Fatalf("answer %d: events %v, want one with %s", i, a.events, want)
				}
				if allowed && (a.result != nil || !a.isEvent) {
					t.Errorf("answer %d: result %q, result_is_event %v; want it sent once, as the event", i, a.result, a.isEvent)
				}
				if !allowed && (string(a.result) != want || a.isEvent) {
					t.Errorf("answer %d: result %q, result_is_event %v; want %s in full", i, a.result, a.isEvent, want)
				}
			}
		})
	}
}
