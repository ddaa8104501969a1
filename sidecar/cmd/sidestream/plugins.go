package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/plugins/builtin"
	"github.com/sidestream/sidestream/sidecar/internal/pluginhost"
)

func newPluginsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "plugins", Short: "List a running sidecar's plugins; add, remove or verify those of a plugin directory"}
	cmd.AddCommand(newPluginsListCommand(), newPluginsVerifyCommand(), newPluginsAddCommand(), newPluginsRemoveCommand())
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
	kind, err := pluginhost.Probe(ctx, src, timeout)
	return kind.Version, err
}

func newPluginsAddCommand() *cobra.Command {
	var dir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "add PATH",
		Short: "Copy a plugin binary into the plugin directory, check that it starts, and pin its sha256 in the manifest",
		Long: "Copy a plugin binary into the plugin directory under the kind name it reports, check that the copy\n" +
			"starts and completes the plugin handshake, and list it in manifest.json pinned by its sha256.\n" +
			"A running sidecar serves it after a restart.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return errors.New("--plugin-dir is required")
			}
			e, kind, err := pluginhost.Add(cmd.Context(), pluginhost.AddRequest{
				Dir: dir, Binary: args[0], Reserved: builtin.Names(), Timeout: timeout,
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "added plugin %s %s as %s, sha256 %s; restart the sidecar to serve it\n",
				e.Name, kind.Version, filepath.Join(dir, e.Path), e.SHA256)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "plugin-dir", "", "plugin directory with manifest.json (created if missing)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long the plugin may take to start")
	return cmd
}

func newPluginsRemoveCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Take a plugin out of the plugin directory's manifest and delete its binary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return errors.New("--plugin-dir is required")
			}
			e, err := pluginhost.Remove(dir, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed plugin %s (%s)\n", e.Name, e.Path)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "plugin-dir", "", "plugin directory with manifest.json")
	return cmd
}
