package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/queueclient"
)

// newQueueCommand is `sidestream queue produce|consume`: the producer and
// consumer clients of the queue API, over its WebSocket.
func newQueueCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Produce to and consume from a queue over the /v2/ws WebSocket",
	}
	var t queueclient.Target
	pf := cmd.PersistentFlags()
	pf.StringVar(&t.Queue, "queue", "default", "queue name")
	pf.StringVar(&t.Project, "project", "", "X-Project-Id (tenant); defaults to the token's tenant")
	pf.StringVar(&t.ClientID, "client-id", "", "Client-ID UUID (default: a new one)")
	cmd.AddCommand(newProduceCommand(&t), newConsumeCommand(&t))
	return cmd
}

// queueTarget completes t with the server, token and client id to use.
func queueTarget(t queueclient.Target, cf *clientFlags) (queueclient.Target, error) {
	c, err := cf.client("queue")
	if err != nil {
		return t, err
	}
	t.URL, t.Token = c.BaseURL(), cf.token
	if cf.ca != "" {
		if t.TLSConfig, err = caConfig(cf.ca); err != nil {
			return t, err
		}
	}
	if t.ClientID == "" {
		t.ClientID = uuid.NewString()
	}
	return t, nil
}

func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

// stopped reports whether err only says that ctx ended: Ctrl-C, SIGTERM or
// --duration, a normal end whose summary is the answer (exit 0, as tail).
func stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

func newProduceCommand(t *queueclient.Target) *cobra.Command {
	var (
		o    queueclient.ProduceOptions
		body string
		cf   *clientFlags
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Post messages in batches; each counts once the server acknowledged it durably",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Target, err = queueTarget(*t, cf); err != nil {
				return err
			}
			if body != "" {
				if !json.Valid([]byte(body)) {
					return fmt.Errorf("--body must be JSON")
				}
				o.Body = json.RawMessage(body)
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			res, err := queueclient.Produce(ctx, o)
			fmt.Fprintf(cmd.OutOrStdout(), "produced %d messages in %s (%.0f msg/s)\n",
				res.Messages, res.Elapsed.Round(time.Millisecond), res.PerSecond())
			if stopped(ctx, err) {
				return nil
			}
			return cf.explain(err)
		},
	}
	cf = addClientFlags(cmd)
	f := cmd.Flags()
	f.IntVar(&o.Count, "count", 1000, "messages to post, exactly (the last batch carries what is left)")
	f.IntVar(&o.Batch, "batch", 10, "messages per post")
	f.Float64Var(&o.Rate, "rate", 0, "messages per second (0: as fast as acknowledged)")
	f.IntVar(&o.InFlight, "inflight", 8, "posts awaiting acknowledgement at once")
	f.DurationVar(&o.TTL, "ttl", 0, "message ttl (0: the queue's default)")
	f.StringVar(&body, "body", "", `JSON body of every message (default {"seq":N})`)
	return cmd
}

func newConsumeCommand(t *queueclient.Target) *cobra.Command {
	var (
		o        queueclient.ConsumeOptions
		duration time.Duration
		print    bool
		ids      bool
		cf       *clientFlags
	)
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Subscribe to a queue: messages arrive claimed; --ack deletes each with its claim",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Target, err = queueTarget(*t, cf); err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			if duration > 0 {
				var c2 context.CancelFunc
				ctx, c2 = context.WithTimeout(ctx, duration)
				defer c2()
			}
			var handle func(api.QueueDelivery)
			if print || ids {
				handle = printMessages(cmd.OutOrStdout(), ids)
			}
			res, err := queueclient.Consume(ctx, o, handle)
			fmt.Fprintf(cmd.ErrOrStderr(), "consumed %d messages in %s (%.0f msg/s)\n",
				res.Messages, res.Elapsed.Round(time.Millisecond), res.PerSecond())
			if stopped(ctx, err) {
				return nil
			}
			return cf.explain(err)
		},
	}
	cf = addClientFlags(cmd)
	f := cmd.Flags()
	f.IntVar(&o.Count, "count", 0, "stop after exactly this many messages, giving back any others claimed (0: until interrupted)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: no limit)")
	f.IntVar(&o.Batch, "batch", 10, "messages per claim")
	f.DurationVar(&o.ClaimTTL, "claim-ttl", 60*time.Second, "claim ttl: undeleted messages come back after it")
	f.DurationVar(&o.Grace, "grace", 60*time.Second, "claim grace")
	f.IntVar(&o.Window, "window", 0, "messages delivered and not yet deleted (0: server default)")
	f.BoolVar(&o.Ack, "ack", true, "delete each message with its claim")
	f.IntVar(&o.InFlight, "inflight", 8, "deletes awaiting acknowledgement at once; deliveries that arrive while all are out are acknowledged together")
	f.IntVar(&o.AckMax, "ack-max", queueclient.DefaultAckMax, "most message ids in one delete (at most the server's max_messages_per_page)")
	f.BoolVar(&print, "print", false, "print each message's body on stdout, one line each")
	f.BoolVar(&ids, "ids", false, "print each message's id on stdout instead of its body")
	return cmd
}

// printMessages returns the handler printing each message's body (JSON
// on one line) or, with ids, its id.
func printMessages(w io.Writer, ids bool) func(api.QueueDelivery) {
	out := bufio.NewWriter(w)
	return func(d api.QueueDelivery) {
		for _, m := range d.Messages {
			if ids {
				out.WriteString(m.ID)
			} else {
				out.Write(oneLine(m.Body))
			}
			out.WriteByte('\n')
		}
		_ = out.Flush() // read live, as tail
	}
}
