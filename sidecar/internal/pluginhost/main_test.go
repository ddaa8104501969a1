package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sidestream/sidestream/core/emitter"
	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// The test binary doubles as the test plugins: the host runs
// "<test binary> internal-plugin MODE", the same shape the sidecar uses
// for its built-ins.
func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == "internal-plugin" {
		servePlugin(os.Args[2])
		os.Exit(0)
	}
	if len(os.Args) >= 2 && os.Args[1] == "internal-host" {
		os.Exit(serveHost())
	}
	goleak.VerifyTestMain(m)
}

// envStartLog names a file every test plugin process appends a line to
// when it starts, so tests can count starts.
const envStartLog = "PLUGINHOST_TEST_START_LOG"

func servePlugin(mode string) {
	if f := os.Getenv(envStartLog); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(fh, os.Getpid())
			fh.Close()
		}
	}
	switch mode {
	case "counter":
		fmt.Fprintln(os.Stderr, "raw hello from plugin")
		sdk.Logger().Warn("counter plugin up", "pid", os.Getpid())
		sdk.Serve(counter{})
	case "guests":
		sdk.ServeGuestSource(fileGuests{})
	case "counter-oldsdk":
		serveOldSDK(counter{})
	case "garbage":
		fmt.Println("hello, I am not a plugin")
		sdk.Serve(counter{})
	case "future":
		// A plugin built against an SDK of the next protocol version.
		sdk.Handshake.ProtocolVersion = sdk.APIVersion + 1
		sdk.Serve(counter{})
	case "exit":
		os.Exit(2)
	case "hang":
		time.Sleep(2 * time.Minute) // killed by the host's start timeout
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(1)
	}
}

// serveHost is a sidecar stand-in for the orphan test: it runs a Host
// with one plugin, prints the plugin's pid and waits to be killed.
func serveHost() int {
	h, err := New(Config{Sources: []Source{{Name: "counter", Cmd: []string{os.Args[0], "internal-plugin", "counter"}}}}, nil)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.Describe(ctx, "counter"); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println(h.Plugins()[0].PID)
	<-ctx.Done() // the test kills us long before
	return 0
}

// counter emits consecutive integers, batch at a time, resuming after
// its checkpoint (the last integer stored).
type counter struct{}

type counterConfig struct {
	Batch      int `json:"batch"`
	IntervalMS int `json:"interval_ms"`
}

func (counter) Describe() sdk.Description {
	return sdk.Description{
		Name: "counter", Version: "1.2.3", Description: "counts",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{
			"batch":{"type":"integer","minimum":1,"maximum":100000},
			"interval_ms":{"type":"integer","minimum":0}},"additionalProperties":false}`),
		Commands:   []sdk.CommandSpec{{Name: "add", Description: "adds args to the checkpoint"}},
		EventTypes: []string{"n"},
	}
}

func (counter) Validate(_ context.Context, raw json.RawMessage) (json.RawMessage, error) {
	var c counterConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, sdk.Invalid("", "%v", err)
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	return json.Marshal(c)
}

func (counter) Run(ctx context.Context, inst sdk.Instance, out sdk.Output) error {
	var c counterConfig
	if err := json.Unmarshal(inst.Config, &c); err != nil {
		return err
	}
	c.Batch = max(c.Batch, 1)
	n, _ := strconv.ParseUint(string(inst.Checkpoint), 10, 64)
	evs := make([]sdk.Event, c.Batch)
	now := time.Now()
	for ctx.Err() == nil {
		var buf []byte
		for i := range evs {
			n++
			start := len(buf)
			buf = strconv.AppendUint(buf, n, 10)
			evs[i] = sdk.Event{Type: "n", Data: buf[start:len(buf):len(buf)], Time: now}
		}
		if err := out.Emit(ctx, sdk.Batch{Events: evs, Checkpoint: strconv.AppendUint(nil, n, 10)}); err != nil {
			return err
		}
		if c.IntervalMS > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(c.IntervalMS) * time.Millisecond):
			}
		}
	}
	return nil
}

func (counter) Command(_ context.Context, inst sdk.Instance, name string, args json.RawMessage) (sdk.CommandResult, error) {
	if name != "add" {
		return sdk.CommandResult{}, fmt.Errorf("%w: %s", sdk.ErrUnknownCommand, name)
	}
	var d uint64
	if err := json.Unmarshal(args, &d); err != nil {
		return sdk.CommandResult{}, &sdk.CommandError{Code: "bad_args", Message: "args must be a number"}
	}
	n, _ := strconv.ParseUint(string(inst.Checkpoint), 10, 64)
	s := strconv.FormatUint(n+d, 10)
	return sdk.CommandResult{
		Result: json.RawMessage(s),
		Batch:  sdk.Batch{Events: []sdk.Event{{Type: "n", Data: json.RawMessage(s)}}, Checkpoint: []byte(s)},
	}, nil
}

// recSink records what a Runner delivers and checks the stream it sees
// is 1, 2, 3, … with no gap and no duplicate, across restarts.
type recSink struct {
	mu          sync.Mutex
	last        uint64 // last integer delivered
	events      int
	checkpoint  []byte
	restartedAt []string // checkpoints handed out by Checkpoint
	broken      error
}

func (s *recSink) Deliver(_ context.Context, b emitter.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range b.Events {
		n, err := strconv.ParseUint(string(e.Data), 10, 64)
		if err == nil && n != s.last+1 && s.broken == nil {
			s.broken = fmt.Errorf("after %d got %d: gap or duplicate", s.last, n)
		}
		if e.Time.IsZero() && s.broken == nil {
			s.broken = errors.New("event without time")
		}
		s.last = n
		s.events++
	}
	if b.Checkpoint != nil {
		s.checkpoint = b.Checkpoint
	}
	return nil
}

func (s *recSink) Checkpoint(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restartedAt = append(s.restartedAt, string(s.checkpoint))
	return s.checkpoint, nil
}

func (s *recSink) snapshot() (last uint64, events int, starts []string, broken error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.events, append([]string(nil), s.restartedAt...), s.broken
}

// envBatchLog names a file the counter-oldsdk plugin appends a line to on
// every CommandBatch call it refuses.
const envBatchLog = "PLUGINHOST_TEST_BATCH_LOG"

// serveOldSDK serves p as a plugin built before CommandBatch existed: the
// generated code of that time answers it Unimplemented.
func serveOldSDK(p sdk.Plugin) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: sdk.Handshake,
		Plugins:         plugin.PluginSet{sdk.PluginName: oldGlue{p: p}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

type oldGlue struct {
	plugin.NetRPCUnsupportedPlugin
	p sdk.Plugin
}

func (g oldGlue) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterEmitterServer(s, oldServer{sdk.NewServer(g.p, nil)})
	return nil
}

func (oldGlue) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

type oldServer struct{ pluginpb.EmitterServer }

func (oldServer) CommandBatch(context.Context, *pluginpb.CommandBatchRequest) (*pluginpb.CommandBatchResponse, error) {
	if f := os.Getenv(envBatchLog); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(fh, "refused")
			fh.Close()
		}
	}
	return nil, status.Error(codes.Unimplemented, "method CommandBatch not implemented")
}
