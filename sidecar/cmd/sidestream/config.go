package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// newConfigCommand is `sidestream config`: tools for the configuration.
func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
		Args:  cobra.NoArgs,
	}
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML, secrets redacted",
		Long: "Print the configuration `sidestream serve` would run with, given the same --config file,\n" +
			"SIDESTREAM_*/OTEL_* environment and flags (flags win over the environment, the environment over\n" +
			"the file, the file over defaults). Secrets (auth.jwt_secret, telemetry.otlp_headers values) are\n" +
			"shown as [redacted]. An invalid configuration is an error naming each bad field.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			out, err := yaml.Marshal(cfg.Redacted())
			if err != nil {
				return fmt.Errorf("encode config: %w", err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	registerConfigFlags(print.Flags())
	cmd.AddCommand(print)
	return cmd
}
