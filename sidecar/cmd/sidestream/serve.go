package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sidestream/sidestream/plugins/builtin"
	"github.com/sidestream/sidestream/sidecar/internal/app"
	"github.com/sidestream/sidestream/sidecar/internal/config"
)

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the sidecar",
		Long: "Run the sidecar: built-in plugins, bbolt state in --data-dir, the HTTP API and livedoc on --listen.\n" +
			"Every flag is also a SIDESTREAM_* environment variable (e.g. SIDESTREAM_DATA_DIR) and a key of the --config YAML file;\n" +
			"flags win over the environment, the environment over the file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			log := newLogger(cfg)
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own executable: %w", err)
			}
			// SIGHUP reads the configuration again: guest sources and
			// rules apply without a restart.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := func() (config.Config, error) { return loadConfig(cmd.Flags()) }
			return app.Run(cmd.Context(), cfg, app.Options{Exe: exe, Builtins: builtin.Names(), Version: version,
				Reload: hup, LoadConfig: reload}, log)
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

// loadConfig layers defaults, file, environment and the flags the user set.
func loadConfig(f *pflag.FlagSet) (config.Config, error) {
	path, _ := f.GetString(config.FileFlag)
	if path == "" {
		path = os.Getenv("SIDESTREAM_CONFIG")
	}
	return config.Load(config.Sources{File: path, Env: os.LookupEnv, Flags: config.FlagSettings(f)})
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
