package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/sidestream/sidestream/plugins/proto"
	"github.com/sidestream/sidestream/plugins/sdk"
)

// maxBatchBytes bounds one received batch; a plugin batch is far below.
const maxBatchBytes = 64 << 20

// proc is one started plugin process. It is never reused once dead.
type proc struct {
	client *plugin.Client
	rpc    pluginpb.EmitterClient
	pid    int
	desc   *pluginpb.DescribeResponse
	// exited is canceled by go-plugin when the process has exited.
	exited context.Context
	logw   *logWriter
	// release ends the exec context of the process (after it is killed).
	release context.CancelFunc
	// gone ends when the process exited or was declared dead; its
	// streams run under it so none outlives the process.
	gone     context.Context
	markDead context.CancelCauseFunc // first reason wins
	// noBatch: the process answered CommandBatch Unimplemented (a plugin
	// built with an SDK before it), so batches go as one Command each.
	noBatch atomic.Bool
}

// isGone reports whether p is dead or dying.
func (p *proc) isGone() bool { return p.gone.Err() != nil }

// glue is the host side of the go-plugin plugin: it hands out the gRPC
// client together with go-plugin's "process exited" context.
type glue struct{ plugin.NetRPCUnsupportedPlugin }

type dispensed struct {
	rpc    pluginpb.EmitterClient
	exited context.Context
}

func (glue) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pluginhost: host side only")
}

func (glue) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return dispensed{rpc: pluginpb.NewEmitterClient(c), exited: ctx}, nil
}

// spawn starts the plugin process and completes the handshake and a
// Describe. It must run on the supervisor's locked OS thread: Pdeathsig
// fires when the thread that forked the child exits, and that thread
// lives exactly as long as the supervisor.
func (k *kindProc) spawn(ctx context.Context) (*proc, error) {
	src, cfg := k.src, k.h.cfg
	if err := VerifyChecksum(src); err != nil {
		return nil, err
	}
	// startCtx kills a process still starting when the host closes, so
	// Close need not wait out StartTimeout; once started, the process
	// outlives ctx and kill ends it (gracefully first), then releases it.
	startCtx, release := context.WithCancel(context.Background())
	abortStart := context.AfterFunc(ctx, release)
	cmd := exec.CommandContext(startCtx, src.Cmd[0], src.Cmd[1:]...)
	// Only what the source declares, never the sidecar's environment:
	// it holds secrets (SIDESTREAM_AUTH_JWT_SECRET, OTLP headers) a
	// plugin has no business reading (SkipHostEnv below).
	cmd.Env = append(append([]string(nil), src.Env...), plugin.EnvUnixSocketDir+"="+k.h.sockDir)
	cmd.SysProcAttr = pluginProcAttr()
	logw := newLogWriter(k.h.log, src.Name)
	dial := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxBatchBytes)),
		grpc.WithInitialWindowSize(pluginpb.PipeWindow), grpc.WithInitialConnWindowSize(pluginpb.PipeWindow),
		grpc.WithReadBufferSize(pluginpb.PipeBuffer), grpc.WithWriteBufferSize(pluginpb.PipeBuffer)}
	if cfg.DialOptions != nil {
		dial = append(dial, cfg.DialOptions(src.Name)...)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake,
		// The host offers every protocol version it speaks (go-plugin
		// passes them in PLUGIN_PROTOCOL_VERSIONS); the plugin answers
		// with the newest it shares, or its own when none is shared.
		VersionedPlugins: map[int]plugin.PluginSet{sdk.APIVersion: {sdk.PluginName: glue{}}},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     cfg.StartTimeout,
		Managed:          false,
		Logger:           hclog.NewNullLogger(),
		Stderr:           logw,
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
		GRPCDialOptions:  dial,
	})
	p := &proc{client: client, logw: logw, release: release}
	fail := func(err error) (*proc, error) {
		abortStart()
		if cmd.Process != nil {
			p.pid = cmd.Process.Pid
		}
		k.kill(p, false)
		return nil, err
	}
	cp, err := client.Client()
	if err != nil {
		return fail(fmt.Errorf("start plugin %s: %w", src.Name, cleanStartErr(err)))
	}
	p.pid = cmd.Process.Pid
	raw, err := cp.Dispense(sdk.PluginName)
	if err != nil {
		return fail(fmt.Errorf("plugin %s: dispense: %w", src.Name, err))
	}
	d, ok := raw.(dispensed)
	if !ok {
		return fail(fmt.Errorf("plugin %s: dispensed %T", src.Name, raw))
	}
	p.rpc, p.exited = d.rpc, d.exited
	p.gone, p.markDead = context.WithCancelCause(d.exited)
	dctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	p.desc, err = p.rpc.Describe(dctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return fail(fmt.Errorf("plugin %s: describe: %w", src.Name, err))
	}
	if p.desc.GetApiVersion() != sdk.APIVersion {
		return fail(fmt.Errorf("plugin %s: speaks API version %d, host speaks %d", src.Name, p.desc.GetApiVersion(), sdk.APIVersion))
	}
	if !abortStart() {
		return fail(fmt.Errorf("plugin %s: %w", src.Name, ErrClosed))
	}
	return p, nil
}

// ErrProtocolVersion means a plugin speaks a plugin protocol version the
// host does not: it was built against an incompatible SDK.
var ErrProtocolVersion = errors.New("incompatible plugin protocol version")

// pluginVersionRe finds the plugin's version in go-plugin's refusal.
var pluginVersionRe = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (\d+)`)

// cleanStartErr keeps go-plugin's message but drops its multi-line advice,
// and turns a protocol version mismatch into a refusal naming both sides.
func cleanStartErr(err error) error {
	msg := err.Error()
	if m := pluginVersionRe.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%w: the plugin speaks protocol version %s, this sidestream speaks %d; rebuild the plugin against a sidestream SDK of protocol version %d",
			ErrProtocolVersion, m[1], sdk.APIVersion, sdk.APIVersion)
	}
	if i := strings.Index(msg, "\nThis usually means"); i > 0 {
		return fmt.Errorf("%s (the plugin wrote to stdout before its handshake)", msg[:i])
	}
	return err
}

// kill ends p within a bounded time: gracefully through go-plugin unless
// hung, then SIGKILL by pid once KillTimeout passed. It returns once
// go-plugin's goroutines for p are gone (or a second bound passed).
func (k *kindProc) kill(p *proc, hung bool) {
	if hung && p.pid > 0 {
		// A stopped or wedged process never answers the graceful
		// shutdown RPC; go straight to SIGKILL.
		killPID(p.pid)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.client.Kill()
	}()
	bound := k.h.cfg.KillTimeout
	select {
	case <-done:
	case <-time.After(bound):
		if p.pid > 0 {
			killPID(p.pid)
		}
		select {
		case <-done:
		case <-time.After(bound):
			k.h.log.Error("plugin kill did not complete", "plugin", k.src.Name, "pid", p.pid)
		}
	}
	p.release()
	p.logw.flush()
}

// VerifyChecksum checks a pinned executable against its sha256 (a source
// without a pin passes).
func VerifyChecksum(src Source) error {
	if src.SHA256 == "" {
		return nil
	}
	f, err := os.Open(src.Cmd[0])
	if err != nil {
		return fmt.Errorf("plugin %s: open executable: %w", src.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("plugin %s: hash executable: %w", src.Name, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(got, src.SHA256) {
		return fmt.Errorf("plugin %s: %w: %s has sha256 %s, manifest pins %s", src.Name, ErrChecksum, src.Cmd[0], got, src.SHA256)
	}
	return nil
}
