package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sidestream/sidestream/plugins/builtin"
	"github.com/sidestream/sidestream/sidecar/internal/app"
	"github.com/sidestream/sidestream/sidecar/internal/config"
)

// flagKeys maps serve's flags to config keys; flags win over env and file.
var flagKeys = map[string]string{
	"listen": "listen", "data-dir": "data_dir", "plugin-dir": "plugin_dir",
	"insecure": "insecure", "debug-listen": "debug_listen", "log-format": "log_format", "log-level": "log_level",
	"heartbeat": "heartbeat", "shutdown-timeout": "shutdown_timeout",
	"plugin-start-timeout": "plugin_start_timeout", "max-body-bytes": "max_body_bytes",
	"otlp-endpoint": "telemetry.otlp_endpoint", "auth-token-file": "auth.token_file",
	"queue-min-message-ttl": "queues.min_message_ttl", "queue-min-claim-ttl": "queues.min_claim_ttl",
	"queue-driver": "queues.driver",
	"cluster-name": "cluster.name", "node-name": "cluster.node_name", "cluster-listen": "cluster.listen",
	"cluster-routes": "cluster.routes", "nats-listen": "cluster.nats_listen", "nats-url": "cluster.nats_url",
	"nats-creds": "cluster.nats_creds", "nats-tls-ca": "cluster.nats_tls_ca", "nats-tls-cert": "cluster.nats_tls_cert",
	"nats-tls-key": "cluster.nats_tls_key", "advertise": "cluster.advertise", "cluster-replicas": "cluster.replicas",
}

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
			return app.Run(cmd.Context(), cfg, app.Options{Exe: exe, Builtins: builtin.Names(), Version: version}, log)
		},
	}
	registerConfigFlags(cmd.Flags())
	return cmd
}

// registerConfigFlags adds the configuration flags shared by serve and
// config print, so both resolve the same effective configuration.
func registerConfigFlags(f *pflag.FlagSet) {
	def := config.Default()
	f.String("config", "", "YAML config file (also SIDESTREAM_CONFIG)")
	f.String("listen", def.Listen, "address to listen on")
	f.String("data-dir", def.DataDir, "directory of the bbolt state file")
	f.String("plugin-dir", "", "directory of external plugins with a manifest.json pinning each binary's sha256")
	f.StringArray("log-root", nil, "directory the log emitter may read files under (repeatable)")
	f.Bool("insecure", false, "allow listening on a non-loopback address without auth")
	f.String("debug-listen", "", "serve pprof profiles on this loopback address (e.g. 127.0.0.1:6060)")
	f.String("log-format", def.LogFormat, "log format: json or text")
	f.String("log-level", def.LogLevel, "log level: debug, info, warn or error")
	f.String("heartbeat", def.Heartbeat.String(), "SSE heartbeat comment and WebSocket ping interval")
	f.String("shutdown-timeout", def.ShutdownTimeout.String(), "how long SIGTERM may drain before exiting")
	f.String("plugin-start-timeout", def.PluginStartTimeout.String(), "how long a plugin may take to start")
	f.Int64("max-body-bytes", def.MaxBodyBytes, "largest request body accepted")
	f.String("otlp-endpoint", "", "export traces over OTLP/gRPC to this URL (also OTEL_EXPORTER_OTLP_ENDPOINT)")
	f.String("auth-token-file", "", "file of static bearer tokens; turns auth on")
	f.String("queue-min-message-ttl", "", "lowest message ttl queues accept (default 60s, as Zaqar)")
	f.String("queue-min-claim-ttl", "", "lowest claim ttl queues accept (default 60s, as Zaqar)")
	f.String("queue-driver", "", "where queues live: bolt or jetstream (default: jetstream in cluster mode, else bolt)")
	f.String("cluster-name", "", "join nodes in an embedded NATS cluster of this name (turns cluster mode on)")
	f.String("node-name", "", "this node's unique name in the cluster (default: the host name)")
	f.String("cluster-listen", "", "route address of the embedded NATS server (e.g. 0.0.0.0:6222)")
	f.String("cluster-routes", "", "comma-separated route URLs of the other nodes (nats-route://host:6222)")
	f.String("nats-listen", "", "also serve NATS clients on this address (the node itself connects in-process)")
	f.String("nats-url", "", "join an external NATS cluster at these comma-separated URLs instead of embedding one")
	f.String("nats-creds", "", "NATS credentials file for --nats-url")
	f.String("nats-tls-ca", "", "CA file to verify the external NATS servers")
	f.String("nats-tls-cert", "", "client certificate file for the external NATS servers")
	f.String("nats-tls-key", "", "client key file for the external NATS servers")
	f.String("advertise", "", "HTTP URL other nodes and clients are told about (default: http:// + --listen)")
	f.Int("cluster-replicas", 0, "JetStream replicas (0: 1 for one or two nodes, 3 from three)")
}

// loadConfig layers defaults, file, environment and the flags the user set.
func loadConfig(f *pflag.FlagSet) (config.Config, error) {
	path, _ := f.GetString("config")
	if path == "" {
		path = os.Getenv("SIDESTREAM_CONFIG")
	}
	src := config.Sources{File: path, Env: os.LookupEnv}
	f.Visit(func(fl *pflag.Flag) {
		if key, ok := flagKeys[fl.Name]; ok {
			src.Flags = append(src.Flags, config.Setting{Key: key, Value: fl.Value.String(), Source: "--" + fl.Name})
		}
	})
	if roots, _ := f.GetStringArray("log-root"); f.Changed("log-root") {
		// A list flag: joined so Set splits it back, whatever the separator.
		src.Flags = append(src.Flags, config.Setting{Key: "log_roots",
			Value: strings.Join(roots, string(os.PathListSeparator)), Source: "--log-root"})
	}
	return config.Load(src)
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
