// Package config is sidestream's one typed configuration: defaults, then a
// YAML file, then SIDESTREAM_* environment variables, then flags (each
// wins over the ones before it). Every validation error names its field.
// The struct tags of Config declare each key once; flags, environment
// names, `config print`, the JSON Schema, the example file and the README
// table are derived from them (keys.go, flags.go, docs.go).
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/internal/crosssite"
)

// Config is the effective configuration of `sidestream serve`.
//
// Its struct tags are the one declaration of every key: `yaml` names the
// file key (and, upper-cased with dots as underscores after SIDESTREAM_,
// the environment variable), `flag` the command-line flag, `help` the
// text of flag, README table, JSON Schema and example file, `unset` what
// a zero value means, `secret` that the value is redacted when printed,
// `enum` the accepted values, `example` the value the example file shows,
// `env` a standard variable read before SIDESTREAM_* and `sep` a list's
// separator in flags and environment. Everything else is derived (keys.go).
type Config struct {
	Listen    string   `yaml:"listen" flag:"listen" help:"HTTP address; a non-loopback address is refused unless auth is configured or insecure is set"`
	DataDir   string   `yaml:"data_dir" flag:"data-dir" example:"/var/lib/sidestream" help:"directory of sidestream.db (bbolt) and its write-ahead journal sidestream.db.journal; back up both, or stop the server first"`
	PluginDir string   `yaml:"plugin_dir" flag:"plugin-dir" unset:"none" help:"directory of external plugins listed in manifest.json, each binary pinned by sha256"`
	LogRoots  []string `yaml:"log_roots" flag:"log-root" sep:"path" unset:"none" example:"/var/log/guests" help:"directories the log emitter may read files under (flag repeatable, variable separated by the path list separator)"`
	// TLSCert and TLSKey serve HTTPS (PEM files, reloaded on SIGHUP).
	TLSCert string `yaml:"tls_cert" flag:"tls-cert" unset:"plain HTTP" help:"PEM certificate chain to serve HTTPS with (reloaded with the key on SIGHUP)"`
	TLSKey  string `yaml:"tls_key" flag:"tls-key" unset:"plain HTTP" help:"PEM private key of tls_cert"`
	// CORSOrigins are the browser origins of other sites allowed to use
	// the API (CORS, WebSocket Origin); "null" allows pages opened from
	// disk.
	CORSOrigins []string `yaml:"cors_origins" flag:"cors-origin" sep:"," unset:"none: only this node's own pages" example:"https://app.example.com,null" help:"browser origins of other sites allowed to call the API and open its streams and WebSockets (scheme://host[:port], or null for pages opened from disk; flag repeatable)"`
	// Insecure allows a non-loopback listen address without auth.
	Insecure bool `yaml:"insecure" flag:"insecure" help:"allow listening on a non-loopback address without auth"`
	// DebugListen, if set, serves Go's pprof profiles on this loopback
	// address (e.g. 127.0.0.1:6060) for profiling under load.
	DebugListen string   `yaml:"debug_listen" flag:"debug-listen" unset:"off" help:"serve pprof profiles on this loopback address (e.g. 127.0.0.1:6060)"`
	LogFormat   string   `yaml:"log_format" flag:"log-format" enum:"json,text" help:"format of the sidecar's logs (plugin logs are re-emitted with plugin=NAME)"`
	LogLevel    string   `yaml:"log_level" flag:"log-level" enum:"debug,info,warn,error" help:"lowest level logged"`
	Heartbeat   Duration `yaml:"heartbeat" flag:"heartbeat" help:"SSE heartbeat comment and WebSocket ping interval"`
	// WakeLinger spaces the wake-ups of a hot stream's subscribers, so
	// a stream of single-event publishes reaches each in batches.
	WakeLinger Duration `yaml:"wake_linger" flag:"wake-linger" help:"least time between two wake-ups of a stream's waiting subscribers: a publish after a quiet spell is sent at once, later ones within this time together at its end (0: one wake-up per publish)"`
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" flag:"shutdown-timeout" help:"how long SIGTERM may drain before exiting"`
	// PluginStartTimeout bounds a plugin's handshake.
	PluginStartTimeout Duration `yaml:"plugin_start_timeout" flag:"plugin-start-timeout" help:"how long a plugin may take to start"`
	MaxBodyBytes       int64    `yaml:"max_body_bytes" flag:"max-body-bytes" help:"largest request body accepted (413 beyond)"`
	// Compat serves earlier systems' exact paths next to the product's
	// (docs/MIGRATING.md); httpapi.CheckCompat refuses colliding choices.
	Compat []string `yaml:"compat" flag:"compat" sep:"," unset:"none" help:"also serve the exact paths of these earlier systems, comma-separated or repeated: realtimer (GET /{user}?data=, WS /ws), pexservice (/, /current, /next, /previous, /reset as plain text), sse-prototype (/log/sse/{id}); realtimer and pexservice collide (docs/MIGRATING.md)"`
	// MagicRate paces the shared /magic stream.
	MagicRate float64 `yaml:"magic_rate" flag:"magic-rate" help:"events per second of the shared /magic stream (the SSE prototype's pace was about 4)"`

	Limits    Limits    `yaml:"limits"`
	Telemetry Telemetry `yaml:"telemetry"`
	Auth      Auth      `yaml:"auth"`
	Queues    Queues    `yaml:"queues"`
	Cluster   Cluster   `yaml:"cluster"`
	Guests    Guests    `yaml:"guests"`
}

// Cluster joins nodes over NATS. With neither Name nor NATSURL set the node
// runs alone: no NATS at all.
type Cluster struct {
	// Name of the embedded NATS cluster; setting it turns cluster mode on.
	Name string `yaml:"name" flag:"cluster-name" unset:"no cluster" help:"join nodes in an embedded NATS cluster of this name (turns cluster mode on)"`
	// NodeName is this node's unique name in the cluster (default: the
	// host name).
	NodeName string `yaml:"node_name" flag:"node-name" unset:"the host name" help:"this node's unique name in the cluster"`
	// Listen is the embedded NATS server's route address (host:port).
	Listen string `yaml:"listen" flag:"cluster-listen" unset:"a random loopback port (no other node can route to it)" help:"route address of the embedded NATS server (e.g. 0.0.0.0:6222)"`
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string `yaml:"routes" flag:"cluster-routes" sep:"," unset:"none" help:"comma-separated route URLs of the other nodes (nats-route://host:6222)"`
	// NATSListen, if set, also serves NATS clients on this address (for
	// the nats CLI); the node itself connects in-process.
	NATSListen string `yaml:"nats_listen" flag:"nats-listen" unset:"a random loopback port" help:"also serve NATS clients on this address (the node itself connects in-process)"`
	// NATSURL joins an external NATS cluster instead of embedding a
	// server (comma-separated URLs); NATSCreds and NATSTLS* authenticate.
	NATSURL     string `yaml:"nats_url" flag:"nats-url" unset:"none" help:"join an external NATS cluster at these comma-separated URLs instead of embedding one"`
	NATSCreds   string `yaml:"nats_creds" flag:"nats-creds" unset:"none" help:"NATS credentials file for nats_url"`
	NATSTLSCA   string `yaml:"nats_tls_ca" flag:"nats-tls-ca" unset:"none" help:"CA file to verify the external NATS servers"`
	NATSTLSCert string `yaml:"nats_tls_cert" flag:"nats-tls-cert" unset:"none" help:"client certificate file for the external NATS servers"`
	NATSTLSKey  string `yaml:"nats_tls_key" flag:"nats-tls-key" unset:"none" help:"client key file for the external NATS servers"`
	// Advertise is the HTTP URL other nodes and clients are told about
	// (default: http:// + listen).
	Advertise string `yaml:"advertise" flag:"advertise" unset:"http:// + listen" help:"HTTP URL other nodes and clients are told about"`
	// Replicas of the JetStream streams and buckets (0: 1 for one or two
	// nodes, 3 from three).
	Replicas int `yaml:"replicas" flag:"cluster-replicas" unset:"automatic (1 for one or two nodes, 3 from three)" help:"JetStream replicas of streams and buckets, 0 to 5"`
	// ExportLinger is how long the owner of a stream gathers events into
	// one message for the other nodes: each node's subscribers then wake
	// and write once per message, not once per event.
	ExportLinger Duration `yaml:"export_linger" flag:"cluster-export-linger" help:"how long a stream's owner gathers events into one message to the other nodes (0: send each at once)"`
}

// Enabled reports whether the node joins a cluster.
func (c Cluster) Enabled() bool { return c.Name != "" || c.NATSURL != "" }

// Queues tunes the Zaqar-style queues. The minimum ttls default to
// Zaqar's (core/queue.DefaultLimits); lower them for tests and demos.
type Queues struct {
	MinMessageTTL Duration `yaml:"min_message_ttl" flag:"queue-min-message-ttl" help:"lowest message ttl queues accept (Zaqar's bound; lower it for demos and tests)"`
	MinClaimTTL   Duration `yaml:"min_claim_ttl" flag:"queue-min-claim-ttl" help:"lowest claim ttl queues accept (Zaqar's bound; lower it for demos and tests)"`
	// Driver stores the queues: "bolt" (the local file) or "jetstream"
	// (shared by the cluster). Load resolves empty to jetstream in
	// cluster mode, else bolt.
	Driver string `yaml:"driver" flag:"queue-driver" enum:"bolt,jetstream" unset:"jetstream in cluster mode, else bolt" example:"bolt" help:"where queues live"`
}

// Telemetry configures traces (metrics are always on at /metrics). The
// standard OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_SERVICE_NAME variables are read too; SIDESTREAM_TELEMETRY_* win
// over them.
type Telemetry struct {
	// OTLPEndpoint enables OTLP/gRPC trace export (e.g.
	// http://otel-collector:4317); empty means no traces are exported.
	OTLPEndpoint string `yaml:"otlp_endpoint" flag:"otlp-endpoint" env:"OTEL_EXPORTER_OTLP_ENDPOINT" unset:"no traces" help:"export traces over OTLP/gRPC to this http(s) URL; metrics are always at /metrics"`
	// OTLPHeaders are sent with every export, often credentials.
	OTLPHeaders map[string]string `yaml:"otlp_headers,omitempty" env:"OTEL_EXPORTER_OTLP_HEADERS" secret:"true" unset:"none" example:"authorization=Bearer <token>" help:"headers sent with every export, often credentials (variable syntax k1=v1,k2=v2)"`
	ServiceName string            `yaml:"service_name" env:"OTEL_SERVICE_NAME" help:"service.name of traces"`
	// TraceSampleRatio is the fraction of new traces kept, in (0, 1].
	TraceSampleRatio float64 `yaml:"trace_sample_ratio" help:"fraction of new traces kept, in (0, 1]"`
}

// Auth configures bearer tokens. Any of its sources turns auth on.
type Auth struct {
	// TokenFile holds static tokens (the file's contents are secret, its
	// path is not).
	TokenFile string `yaml:"token_file" flag:"auth-token-file" unset:"none" help:"file of static bearer tokens carrying tenant and scopes; any auth source turns auth on"`
	// JWTSecret is an inline HS256 key (usually from
	// SIDESTREAM_AUTH_JWT_SECRET); JWTSecretFile a file holding one.
	JWTSecret     string `yaml:"jwt_secret" secret:"true" unset:"none" help:"inline HS256 key of JWTs, at least 32 bytes (prefer the variable to the file)"`
	JWTSecretFile string `yaml:"jwt_secret_file" unset:"none" help:"file holding the HS256 key of JWTs"`
	// JWTPublicKeyFile is a PEM RS256 public key; JWKSFile a JSON Web Key Set.
	JWTPublicKeyFile string `yaml:"jwt_public_key_file" unset:"none" help:"PEM public key of RS256 JWTs"`
	JWKSFile         string `yaml:"jwks_file" unset:"none" help:"JSON Web Key Set file of RS256 JWTs"`
	// Issuer and Audience, when set, must match a JWT's iss and aud;
	// TenantClaim names the claim holding the tenant.
	Issuer      string `yaml:"issuer" unset:"any" help:"iss a JWT must carry"`
	Audience    string `yaml:"audience" unset:"any" help:"aud a JWT must carry"`
	TenantClaim string `yaml:"tenant_claim" help:"JWT claim holding the tenant (project_id is read when it is absent)"`
}

// Enabled reports whether any token source is configured.
func (a Auth) Enabled() bool {
	return a.TokenFile != "" || a.JWTSecret != "" || a.JWTSecretFile != "" || a.JWTPublicKeyFile != "" || a.JWKSFile != ""
}

// Duration reads "15s" from YAML and environment.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String implements pflag.Value.
func (d *Duration) String() string { return time.Duration(*d).String() }

// Set implements pflag.Value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }

// Default returns the configuration used with no file, env or flags: the
// values in force, so `config print` shows what the server enforces.
func Default() Config {
	limits := queue.DefaultLimits()
	return Config{
		Listen:             "127.0.0.1:9000",
		DataDir:            "data",
		LogFormat:          "json",
		LogLevel:           "info",
		Heartbeat:          Duration(15 * time.Second),
		ShutdownTimeout:    Duration(20 * time.Second),
		PluginStartTimeout: Duration(10 * time.Second),
		MaxBodyBytes:       1 << 20,
		MagicRate:          4,
		WakeLinger:         Duration(5 * time.Millisecond),
		Telemetry:          Telemetry{ServiceName: "sidestream", TraceSampleRatio: 1},
		Auth:               Auth{TenantClaim: "tenant"},
		Cluster:            Cluster{ExportLinger: Duration(2 * time.Millisecond)},
		Queues:             Queues{MinMessageTTL: Duration(limits.MinMessageTTL), MinClaimTTL: Duration(limits.MinClaimTTL)},
	}
}

// FieldError is a configuration error of one field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// LoadFile applies a YAML file onto c. Unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it simply sets nothing.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Validate checks every field; the errors are joined and each names its
// field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, args...)})
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("listen", "%v (want host:port, e.g. 127.0.0.1:9000)", err)
	} else if !c.Insecure && !c.Auth.Enabled() && !IsLoopback(host) {
		bad("listen", "%q is not a loopback address; sidestream has no auth configured, so it refuses to listen beyond this host unless --insecure is given", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together")
	}
	for i, o := range c.CORSOrigins {
		if _, err := crosssite.ParseOrigin(o); err != nil {
			bad(fmt.Sprintf("cors_origins[%d]", i), "%v", err)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	errs = append(errs, c.validateEnums()...)
	if c.Heartbeat <= 0 {
		bad("heartbeat", "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	if c.PluginStartTimeout <= 0 {
		bad("plugin_start_timeout", "must be positive")
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "must be at least 1024")
	}
	errs = append(errs, c.Limits.validate()...)
	if c.WakeLinger < 0 || time.Duration(c.WakeLinger) > time.Second {
		bad("wake_linger", "must be 0 to 1s, not %s", time.Duration(c.WakeLinger))
	}
	if !(c.MagicRate > 0 && c.MagicRate <= 100000) {
		bad("magic_rate", "must be > 0 and at most 100000 events per second, not %v", c.MagicRate)
	}
	errs = append(errs, c.Telemetry.validate()...)
	errs = append(errs, c.Auth.validate()...)
	for i, r := range c.LogRoots {
		if !strings.HasPrefix(r, "/") {
			bad(fmt.Sprintf("log_roots[%d]", i), "%q must be an absolute path", r)
		}
	}
	errs = append(errs, c.Queues.validate()...)
	if c.Auth.TenantClaim == "" {
		bad("auth.tenant_claim", "must not be empty")
	}
	errs = append(errs, c.Cluster.validate(c.Queues.Driver)...)
	errs = append(errs, c.Guests.validate()...)
	if c.DebugListen != "" {
		// Profiles expose memory contents: never beyond this host.
		if host, _, err := net.SplitHostPort(c.DebugListen); err != nil || !IsLoopback(host) {
			bad("debug_listen", "%q must be a loopback host:port (profiles are not for the network)", c.DebugListen)
		}
	}
	return errors.Join(errs...)
}

func (t Telemetry) validate() []error {
	var errs []error
	if t.OTLPEndpoint != "" {
		u, err := url.Parse(t.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, &FieldError{"telemetry.otlp_endpoint",
				fmt.Sprintf("%q is not an http:// or https:// URL (e.g. http://otel-collector:4317)", t.OTLPEndpoint)})
		}
	}
	if t.ServiceName == "" {
		errs = append(errs, &FieldError{"telemetry.service_name", "must not be empty"})
	}
	if !(t.TraceSampleRatio > 0 && t.TraceSampleRatio <= 1) {
		errs = append(errs, &FieldError{"telemetry.trace_sample_ratio", fmt.Sprintf("must be in (0, 1], not %v", t.TraceSampleRatio)})
	}
	return errs
}

// validate bounds the minimum ttls by what the queue service accepts: a
// zero would silently become Zaqar's 60s there, so it is refused here.
func (q Queues) validate() []error {
	var errs []error
	limits := queue.DefaultLimits()
	for _, b := range []struct {
		key      string
		v        Duration
		max      time.Duration
		maxField string
	}{
		{"queues.min_message_ttl", q.MinMessageTTL, limits.MaxMessageTTL, "maximum message ttl"},
		{"queues.min_claim_ttl", q.MinClaimTTL, limits.MaxClaimTTL, "maximum claim ttl"},
	} {
		if b.v <= 0 || time.Duration(b.v) > b.max {
			errs = append(errs, &FieldError{b.key, fmt.Sprintf("must be positive and at most the %s, %s; not %s", b.maxField, b.max, time.Duration(b.v))})
		}
	}
	return errs
}

func (c Cluster) validate(driver string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, args...)})
	}
	if driver == "jetstream" && !c.Enabled() {
		bad("queues.driver", "jetstream needs cluster mode (cluster.name or cluster.nats_url)")
	}
	if c.Name != "" && c.NATSURL != "" {
		bad("cluster.nats_url", "either embed NATS (cluster.name) or join an external one (cluster.nats_url), not both")
	}
	if c.Name != "" && c.NATSURL == "" && len(c.Routes) == 0 {
		// JetStream refuses to run clustered without configured routes.
		bad("cluster.routes", "an embedded cluster needs the route URLs of the other nodes (nats-route://host:6222); one node alone runs without cluster.name")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		bad("cluster.replicas", "must be 0 (automatic) to 5, not %d", c.Replicas)
	}
	if c.ExportLinger < 0 || time.Duration(c.ExportLinger) > time.Second {
		bad("cluster.export_linger", "must be 0 to 1s, not %s", time.Duration(c.ExportLinger))
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("cluster.listen", "%v (want host:port, e.g. 0.0.0.0:6222)", err)
		}
	}
	for i, r := range c.Routes {
		if u, err := url.Parse(r); err != nil || u.Host == "" {
			bad(fmt.Sprintf("cluster.routes[%d]", i), "%q is not a route URL (nats-route://host:port)", r)
		}
	}
	if c.Advertise != "" {
		if u, err := url.Parse(c.Advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("cluster.advertise", "%q is not an http:// or https:// URL", c.Advertise)
		}
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("cluster.nats_tls_cert", "nats_tls_cert and nats_tls_key go together")
	}
	return errs
}

// minJWTSecret is the HS256 key length RFC 7518 §3.2 requires (256 bits).
const minJWTSecret = 32

func (a Auth) validate() []error {
	var errs []error
	if a.JWTSecret != "" && len(a.JWTSecret) < minJWTSecret {
		// Never quote the secret itself.
		errs = append(errs, &FieldError{"auth.jwt_secret", fmt.Sprintf("must be at least %d bytes (HS256 needs a 256-bit key)", minJWTSecret)})
	}
	return errs
}

// IsLoopback reports whether host (an IP or "localhost") is loopback. An
// empty host means every interface, which is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
