package main

import (
	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/sidecar/internal/config"
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
			"shown as [redacted]. A key left unset on purpose is commented with what that means (e.g. replicas: 0\n" +
			"# automatic …). An invalid configuration is an error naming each bad field.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			out, err := config.PrintYAML(cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	config.RegisterFlags(print.Flags())
	schema := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the --config YAML file",
		Long: "Print the JSON Schema (draft 2020-12) of the YAML file `sidestream serve --config` reads, for editors\n" +
			"and CI checks; deploy/sidestream.schema.json is a copy of it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.JSONSchema())
			return err
		},
	}
	cmd.AddCommand(print, schema)
	return cmd
}
