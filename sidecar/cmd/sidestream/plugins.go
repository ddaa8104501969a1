package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/sidecar/internal/pluginhost"
)

func newPluginsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "plugins", Short: "List a running sidecar's plugins or verify a plugin directory"}
	cmd.AddCommand(newPluginsListCommand(), newPluginsVerifyCommand())
	return cmd
}

func newPluginsListCommand() *cobra.Command {
	var cf *clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show the plugins of a running sidecar: state, pid, restarts, instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client("plugins")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			plugins, err := c.Plugins(ctx)
			if err != nil {
				return cf.explain(err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tPID\tRESTARTS\tINSTANCES\tLAST ERROR")
			for _, p := range plugins {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", p.Name, p.Version, p.State, p.PID, p.Restarts, p.Instances, p.LastError)
			}
			return tw.Flush()
		},
	}
	cf = addClientFlags(cmd)
	return cmd
}

func newPluginsVerifyCommand() *cobra.Command {
	var dir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every plugin of a plugin directory: manifest, pinned sha256, handshake and Describe",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--plugin-dir is required")
			}
			return verifyPlugins(cmd.Context(), cmd.OutOrStdout(), dir, timeout)
		},
	}
	cmd.Flags().StringVar(&dir, "plugin-dir", "", "plugin directory with manifest.json")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long each plugin may take to start")
	return cmd
}

// verifyPlugins starts each listed plugin the way serve would and asks it to
// describe itself; any failure makes the command exit non-zero.
func verifyPlugins(ctx context.Context, out io.Writer, dir string, timeout time.Duration) error {
	sources, err := pluginhost.LoadManifest(dir)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRESULT\tVERSION\tDETAIL")
	var failed []string
	for _, src := range sources {
		version, err := verifyOne(ctx, src, timeout)
		if err != nil {
			failed = append(failed, src.Name)
			fmt.Fprintf(tw, "%s\tFAIL\t\t%v\n", src.Name, err)
			continue
		}
		fmt.Fprintf(tw, "%s\tok\t%s\tsha256 %s\n", src.Name, version, src.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d plugins failed verification: %s", len(failed), len(sources), strings.Join(failed, ", "))
	}
	return nil
}

func verifyOne(ctx context.Context, src pluginhost.Source, timeout time.Duration) (string, error) {
	if err := pluginhost.VerifyChecksum(src); err != nil {
		return "", err
	}
	host, err := pluginhost.New(pluginhost.Config{
		Sources: []pluginhost.Source{src}, StartTimeout: timeout, CrashLimit: 1, ReadyWait: timeout,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = host.Close(cctx)
	}()
	dctx, cancel := context.WithTimeout(ctx, timeout+time.Second)
	defer cancel()
	kind, err := host.Describe(dctx, src.Name)
	if err != nil {
		if st := host.Plugins(); len(st) == 1 && st[0].LastError != "" {
			return "", fmt.Errorf("%w (%s)", err, st[0].LastError)
		}
		return "", err
	}
	return kind.Version, nil
}
