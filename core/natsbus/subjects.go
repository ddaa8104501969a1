package natsbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects and buckets of the cluster. Every name starts with
// "sidestream" so an external NATS shared with other software stays tidy.
const (
	subjectHeartbeat = "sidestream.nodes.heartbeat"
	subjectRPC       = "sidestream.rpc."    // + node
	subjectEvents    = "sidestream.events." // + escaped stream name
	bucketNodes      = "sidestream_nodes"
	bucketEmitters   = "sidestream_emitters"
)

// token escapes a stream or node name into one subject token: '.' would
// split it and '*' / '>' are wildcards; '_' is the escape itself.
func token(name string) string {
	if !strings.ContainsAny(name, "._*> ") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '.', '_', '*', '>', ' ':
			fmt.Fprintf(&b, "_%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// untoken reverses token.
func untoken(tok string) string {
	if !strings.Contains(tok, "_") {
		return tok
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] == '_' && i+2 < len(tok) {
			if v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(tok[i])
	}
	return b.String()
}

// retryJS retries a JetStream management call while the cluster is still
// forming (no meta leader yet, too few peers for the replicas asked), up
// to ctx's end. While a cluster forms a request can go unanswered (no meta
// leader yet; nodes started together create the same stream at once and
// none hears back) and the retry then succeeds at once, so the first
// attempts are short (1 s, 2 s, … up to 5 s for a slow cluster): a fixed
// 5 s per lost answer made a fresh three-node start take about 11 s. The
// pause between attempts is jittered so such nodes stop asking in step.
func retryJS(ctx context.Context, what string, fn func(context.Context) error) error {
	delay, attempt := 100*time.Millisecond, time.Second
	for {
		cctx, cancel := context.WithTimeout(ctx, attempt)
		attempt = min(attempt*2, 5*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if !transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay + rand.N(delay)):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10008 temporarily unavailable, 10023 insufficient resources
		// (peers not up yet), 10074 no suitable peers.
		switch apiErr.ErrorCode {
		case 10008, 10023, 10074, 10005:
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		strings.Contains(err.Error(), "no responders") || strings.Contains(err.Error(), "timeout") ||
		strings.Contains(err.Error(), "unavailable")
}

// waitLeader returns once the stream has a leader (a just-created
// replicated stream answers gets only then), up to ctx's end.
func waitLeader(ctx context.Context, st jetstream.Stream) error {
	return retryJS(ctx, "stream leader", func(ctx context.Context) error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster != nil && info.Cluster.Leader == "" {
			return errNoLeader
		}
		return nil
	})
}

// errNoLeader is transient: an election is under way.
var errNoLeader = errors.New("stream leader election under way (unavailable)")

// callTimeout bounds a call into NATS made under a context without a
// deadline (an HTTP request's): nats.go's requests need one.
const callTimeout = 30 * time.Second

// withDeadline returns ctx, bounded by callTimeout if it had no deadline.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, callTimeout)
}

// waitAll waits for wg, or ctx's end (then what names the part in the
// error): how every part of the package closes.
func waitAll(ctx context.Context, wg *sync.WaitGroup, what string) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close %s: %w", what, ctx.Err())
	}
}

// everyTick calls fn every interval until ctx ends: the position checks'
// loop.
func everyTick(ctx context.Context, every time.Duration, fn func(context.Context)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn(ctx)
		}
	}
}
