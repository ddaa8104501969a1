package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "sidestream",
		Short:         "Per-node sidecar that hosts event emitters and streams their events",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newVersionCommand(), newPluginsCommand())
	root.AddCommand(newConfigCommand())
	root.AddCommand(newBenchCommand())
	root.AddCommand(newTailCommand())
	root.AddCommand(newQueueCommand())
	root.AddCommand(newGuestsCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			goVersion := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "sidestream %s (%s)\n", version, goVersion)
			return err
		},
	}
}
