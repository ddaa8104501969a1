package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/apiclient"
)

// tailOptions are the flags of sidestream tail.
type tailOptions struct {
	*clientFlags
	transport string
	after     uint64
	output    string
	maxWait   time.Duration
	maxRate   uint64
	filter    string
}

func newTailCommand() *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail URL|STREAM",
		Short: "Follow a stream over SSE or WebSocket, reconnecting and resuming without loss",
		Long: "Follow a stream: STREAM is a stream name (an emitter id, track:USER, magic, time, fib) on --server;\n" +
			"URL is a full SSE or WebSocket URL (http://…/sse/log/ID, ws://…/ws/track/USER).\n" +
			"Without --after, STREAM starts at the stream's newest event. When the server goes away tail\n" +
			"reconnects forever with exponential backoff and jitter and resumes after the last seq printed,\n" +
			"so every event is printed once, in order. raw prints each event's data on a line (gap, reset and\n" +
			"skipped markers go to stderr); json prints one envelope {stream,seq,type,time,data} per line.\n" +
			"--filter keeps only the events a CEL expression over that envelope matches, e.g.\n" +
			"  sidestream tail magic --filter 'data.magic > 0'\n" +
			"Exits 0 on SIGINT; exits 1 when the server refuses the stream (4xx, e.g. unknown stream or a bad\n" +
			"--filter, whose message names the position at fault).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTail(cmd, args[0], o, cmd.Flags().Changed("after"))
		},
	}
	o.clientFlags = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.transport, "transport", "sse", "sse or ws")
	f.Uint64Var(&o.after, "after", 0, "start after this seq (0: from the oldest event kept)")
	f.StringVar(&o.output, "output", "raw", "raw (data per line) or json (one envelope per line)")
	f.DurationVar(&o.maxWait, "max-backoff", 5*time.Second, "longest wait between reconnects")
	f.Uint64Var(&o.maxRate, "max-rate", 0, "ask the server for at most this many events a second; what it leaves out is reported (0: all)")
	f.StringVar(&o.filter, "filter", "", "print only the events this CEL expression matches; it sees the envelope's stream, seq, type, time "+
		"and data (the JSON data: data.level, data[\"a-b\"]; a JSON number is a double), e.g. 'data.level == \"error\"'")
	return cmd
}

func runTail(cmd *cobra.Command, target string, o tailOptions, afterSet bool) error {
	if o.transport != "sse" && o.transport != "ws" {
		return fmt.Errorf("--transport %q: want sse or ws", o.transport)
	}
	if o.output != "raw" && o.output != "json" {
		return fmt.Errorf("--output %q: want raw or json", o.output)
	}
	if o.maxWait <= 0 {
		return fmt.Errorf("--max-backoff must be positive")
	}
	isURL := strings.Contains(target, "://")
	o.resolve()
	if isURL {
		o.server = urlOrigin(target) // the URL names its server
	}
	c, err := o.client("tail")
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	fo := apiclient.FollowOptions{
		Transport:  apiclient.Transport(o.transport),
		MaxBackoff: o.maxWait,
		MaxRate:    o.maxRate,
		Filter:     o.filter,
		OnReconnect: func(r apiclient.Reconnect) {
			fmt.Fprintf(stderr, "sidestream tail: connection lost (%v); reconnecting in %s, resuming after seq %d\n",
				r.Err, r.Delay.Round(time.Millisecond), r.After)
		},
	}
	if afterSet {
		fo.After = &o.after
	}
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 32<<10)
	handle := printer(out, stderr, o.output)
	if isURL {
		err = c.FollowURL(cmd.Context(), target, fo, handle)
	} else {
		err = c.Follow(cmd.Context(), target, fo, handle)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if errors.Is(err, context.Canceled) {
		return nil // SIGINT: a normal end
	}
	return o.explain(err)
}

// urlOrigin is scheme://host of a stream URL (the client's base).
func urlOrigin(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	switch scheme {
	case "ws":
		scheme = "http"
	case "wss":
		scheme = "https"
	}
	return scheme + "://" + host
}

// printer returns the Follow handler writing events to out.
func printer(out *bufio.Writer, stderr io.Writer, mode string) func(api.Event) error {
	return func(ev api.Event) error {
		data := oneLine(ev.Data)
		if mode == "json" {
			// api.Event leaves out the time a transport did not carry.
			ev.Data = data
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			out.Write(b)
		} else {
			if from, to, ok := ev.GapRange(); ok {
				fmt.Fprintf(stderr, "sidestream tail: gap: seqs %d..%d are no longer kept by the server\n", from, to)
				return nil
			}
			if sk, ok := ev.SkippedRange(); ok {
				fmt.Fprintf(stderr, "sidestream tail: skipped %d events (seqs %d..%d) to keep to the max rate\n", sk.Skipped, sk.From, sk.To)
				return nil
			}
			if start, ok := ev.ResetStart(); ok {
				fmt.Fprintf(stderr, "sidestream tail: reset: the stream keeps no history and started over at seq %d; nothing before it is delivered\n", start)
				return nil
			}
			out.Write(data)
		}
		if err := out.WriteByte('\n'); err != nil {
			return err
		}
		// A tail is read live: every event goes out when it arrives.
		return out.Flush()
	}
}

// oneLine returns data compacted onto one line when it is JSON with
// newlines (a raw line per event must stay one line).
func oneLine(data []byte) []byte {
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		return data
	}
	var b bytes.Buffer
	if json.Compact(&b, data) == nil {
		return b.Bytes()
	}
	r := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")
	return []byte(r.Replace(string(data)))
}
