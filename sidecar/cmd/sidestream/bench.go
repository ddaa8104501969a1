package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/sidecar/internal/bench"
)

// newBenchCommand is `sidestream bench SCENARIO`: the load generator.
func newBenchCommand() *cobra.Command {
	var (
		o                bench.Options
		buckets, format  string
		jsonOut, htmlOut string
		quiet            bool
		cf               *clientFlags
		subServers       []string
		withBaseline     bool
	)
	cmd := &cobra.Command{
		Use:   "bench SCENARIO",
		Short: "Load-test a running sidestream (" + strings.Join(bench.Names(), ", ") + ")",
		Long: `Load-test a running sidestream server with one scenario:

  fanout     N SSE or WS subscribers of one magic emitter at R events/s: deliveries/s,
             delivery latency (receive time - event time), losses
  sse-users  U users open /sse/log/{id} and each reads E events (the Gatling test)
  track      GET /track/{user}?data=… at concurrency C, a WS subscriber per user
  fib        POST /fib/next at concurrency C (the ab test)
  idle       N idle SSE/WS connections: server RSS per connection
  queue      producers and consumers over the queue WebSocket

Against a cluster, the emitter, the tracker publishes and the queue producers use
--server; give the other nodes as --sub-server URLs (repeated or comma-separated) and
subscribers (fanout, sse-users, track) and queue consumers spread round-robin over
them. Name --server among them to put subscribers on the publisher's node too:
fanout then reports same-node and cross-node latency and what crossing adds.

The server's CPU and RSS are read from /proc when it runs on this machine (found by
the --server's listening port, or --pid). Progress goes to stderr once a second; the
report to stdout (text or JSON), optionally also to --json-out and --html-out files.

With --baseline (fanout, track, fib) the same load first runs against a bare net/http
server started in the bench process (in memory, no plugin, no durability): the report
adds its rate and p99 and sidestream's ratio to it.

Exit status: 0 when every target of the report is met, 3 when the run completed but
a target FAILed (the report says which), 1 when the run itself failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client("bench")
			if err != nil {
				return err
			}
			o.Target, o.Token, o.Targets = c.BaseURL(), cf.token, subServers
			if buckets != "" {
				b, err := bench.ParseBuckets(buckets)
				if err != nil {
					return err
				}
				o.Buckets = b
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			if !quiet {
				o.Progress = cmd.ErrOrStderr()
			}
			var base *bench.Report
			if withBaseline {
				if base, err = bench.Baseline(cmd.Context(), args[0], o); err != nil {
					return fmt.Errorf("baseline: %w", err)
				}
			}
			rep, runErr := bench.Run(cmd.Context(), args[0], o)
			runErr = cf.explain(runErr)
			if rep != nil && base != nil {
				bench.CompareBaseline(rep, base)
			}
			if rep == nil {
				return runErr
			}
			if err := writeReports(cmd.OutOrStdout(), rep, format, jsonOut, htmlOut); err != nil {
				return errors.Join(runErr, err)
			}
			if runErr != nil {
				return runErr
			}
			return missedTargets(cmd.ErrOrStderr(), rep)
		},
	}
	cf = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&subServers, "sub-server", nil,
		"base URLs the subscribers and queue consumers use, round-robin (repeated or comma-separated; default --server)")
	f.IntVar(&o.PID, "pid", 0, "server process for CPU/RSS (0: find by port if local, -1: off)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "measured window (idle: how long connections are held)")
	f.DurationVar(&o.Warmup, "warmup", time.Second, "load before the window opens (0s: none)")
	f.IntVar(&o.Subscribers, "subscribers", 0, "fanout: subscribers (default 1000)")
	f.Float64Var(&o.Rate, "rate", 0, "fanout: events/s of each stream; sse-users: of the emitter (default 1000)")
	f.IntVar(&o.Streams, "streams", 0, "fanout: streams the subscribers spread over, each at --rate (default 1)")
	f.StringVar(&o.Publish, "publish", "", "fanout: magic (an emitter per stream on the server) or http (the bench POSTs each event to /track/{user}: latency from the publish) (default magic)")
	f.StringVar(&o.Transport, "transport", "", "fanout: sse or ws; idle: sse, ws or both (default sse)")
	f.IntVar(&o.Users, "users", 0, "sse-users: users (default 1000); track: users (default = concurrency)")
	f.IntVar(&o.Events, "events", 0, "sse-users: events each user reads (default 1000)")
	f.IntVar(&o.Concurrency, "concurrency", 0, "track (default 64), fib (default 10): request loops")
	f.IntVar(&o.Conns, "conns", 0, "idle: connections (default 10000)")
	f.IntVar(&o.Producers, "producers", 0, "queue: producers")
	f.IntVar(&o.Consumers, "consumers", 0, "queue: consumers")
	f.IntVar(&o.Size, "size", 0, "queue: message size in bytes")
	f.IntVar(&o.Batch, "batch", 0, "queue: messages per post and per claim, 1-100 (default 50)")
	f.IntVar(&o.AckMax, "ack-max", 0, "queue: most message ids in one delete, at most the server's max_messages_per_page (default 100)")
	f.Int64Var(&o.MaxOps, "max-ops", 0, "upper bound of requests or messages in the measured window, warm-up not counted (0: none but --duration)")
	f.Float64Var(&o.OpsRate, "ops-rate", 0, "track: publishes/s, queue: messages/s, for the whole run (0: as fast as they go)")
	f.IntVar(&o.ConnectConcurrency, "connect-concurrency", 64, "connections opened at once")
	f.StringVar(&buckets, "buckets", "", `histogram buckets, e.g. "[0,1ms,10ms,100ms]"`)
	f.StringVar(&format, "format", "text", "report on stdout: text or json")
	f.StringVar(&jsonOut, "json-out", "", "also write the JSON report to this file")
	f.StringVar(&htmlOut, "html-out", "", "also write a self-contained HTML plot to this file")
	f.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	f.BoolVar(&withBaseline, "baseline", false, "fanout, track, fib: also run the load against a bare in-memory net/http server first and report the ratio")
	return cmd
}

// exitTargetsMissed is the exit status of a run that completed and
// missed a target: scripts and CI tell it from a failed run (1).
const exitTargetsMissed = 3

// missedTargets names the FAILed targets of rep on stderr and returns the
// exit status that says so; nil when every target was met.
func missedTargets(stderr io.Writer, rep *bench.Report) error {
	var failed []string
	for _, c := range rep.Checks {
		if !c.OK {
			failed = append(failed, fmt.Sprintf("%s (want %s, got %s)", c.Name, c.Want, c.Got))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	fmt.Fprintf(stderr, "sidestream bench: %d of %d targets FAILED: %s\n", len(failed), len(rep.Checks), strings.Join(failed, "; "))
	return &exitError{code: exitTargetsMissed}
}

func writeReports(stdout io.Writer, rep *bench.Report, format, jsonOut, htmlOut string) error {
	var err error
	if format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	for path, write := range map[string]func(io.Writer) error{jsonOut: rep.WriteJSON, htmlOut: rep.WriteHTML} {
		if path == "" {
			continue
		}
		if err := writeFile(path, write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
