// Package config is sidestream's one typed configuration: defaults, then a
// YAML file, then SIDESTREAM_* environment variables, then flags (each
// wins over the ones before it). Every validation error names its field.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the effective configuration of `sidestream serve`.
type Config struct {
	Listen    string   `yaml:"listen"`
	DataDir   string   `yaml:"data_dir"`
	PluginDir string   `yaml:"plugin_dir"`
	LogRoots  []string `yaml:"log_roots"`
	// Insecure allows a non-loopback listen address without auth.
	Insecure bool `yaml:"insecure"`
	// DebugListen, if set, serves Go's pprof profiles on this loopback
	// address (e.g. 127.0.0.1:6060) for profiling under load.
	DebugListen string   `yaml:"debug_listen"`
	LogFormat   string   `yaml:"log_format"`
	LogLevel    string   `yaml:"log_level"`
	Heartbeat   Duration `yaml:"heartbeat"`
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// PluginStartTimeout bounds a plugin's handshake.
	PluginStartTimeout Duration `yaml:"plugin_start_timeout"`
	MaxBodyBytes       int64    `yaml:"max_body_bytes"`

	Telemetry Telemetry `yaml:"telemetry"`
	Auth      Auth      `yaml:"auth"`
	Queues    Queues    `yaml:"queues"`
	Cluster   Cluster   `yaml:"cluster"`
}

// Cluster joins nodes over NATS. With neither Name nor NATSURL set the node
// runs alone: no NATS at all.
type Cluster struct {
	// Name of the embedded NATS cluster; setting it turns cluster mode on.
	Name string `yaml:"name"`
	// NodeName is this node's unique name in the cluster (default: the
	// host name).
	NodeName string `yaml:"node_name"`
	// Listen is the embedded NATS server's route address (host:port).
	Listen string `yaml:"listen"`
	// Routes are the other nodes' route URLs (nats-route://host:port).
	Routes []string `yaml:"routes"`
	// NATSListen, if set, also serves NATS clients on this address (for
	// the nats CLI); the node itself connects in-process.
	NATSListen string `yaml:"nats_listen"`
	// NATSURL joins an external NATS cluster instead of embedding a
	// server (comma-separated URLs); NATSCreds and NATSTLS* authenticate.
	NATSURL     string `yaml:"nats_url"`
	NATSCreds   string `yaml:"nats_creds"`
	NATSTLSCA   string `yaml:"nats_tls_ca"`
	NATSTLSCert string `yaml:"nats_tls_cert"`
	NATSTLSKey  string `yaml:"nats_tls_key"`
	// Advertise is the HTTP URL other nodes and clients are told about
	// (default: http:// + listen).
	Advertise string `yaml:"advertise"`
	// Replicas of the JetStream streams and buckets (0: 1 for one or two
	// nodes, 3 from three).
	Replicas int `yaml:"replicas"`
}

// Enabled reports whether the node joins a cluster.
func (c Cluster) Enabled() bool { return c.Name != "" || c.NATSURL != "" }

// Queues tunes the Zaqar-style queues. Zero durations keep Zaqar's limits
// (60s minimum message ttl and claim ttl); lower them for tests and demos.
type Queues struct {
	MinMessageTTL Duration `yaml:"min_message_ttl"`
	MinClaimTTL   Duration `yaml:"min_claim_ttl"`
	// Driver stores the queues: "bolt" (the local file) or "jetstream"
	// (shared by the cluster). Empty: jetstream in cluster mode, else bolt.
	Driver string `yaml:"driver"`
}

// Telemetry configures traces (metrics are always on at /metrics). The
// standard OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_SERVICE_NAME variables are read too; SIDESTREAM_TELEMETRY_* win
// over them.
type Telemetry struct {
	// OTLPEndpoint enables OTLP/gRPC trace export (e.g.
	// http://otel-collector:4317); empty means no traces are exported.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPHeaders are sent with every export, often credentials.
	OTLPHeaders map[string]string `yaml:"otlp_headers,omitempty" secret:"true"`
	ServiceName string            `yaml:"service_name"`
	// TraceSampleRatio is the fraction of new traces kept, in (0, 1].
	TraceSampleRatio float64 `yaml:"trace_sample_ratio"`
}

// Auth configures bearer tokens. Any of its sources turns auth on.
type Auth struct {
	// TokenFile holds static tokens (the file's contents are secret, its
	// path is not).
	TokenFile string `yaml:"token_file"`
	// JWTSecret is an inline HS256 key (usually from
	// SIDESTREAM_AUTH_JWT_SECRET); JWTSecretFile a file holding one.
	JWTSecret     string `yaml:"jwt_secret" secret:"true"`
	JWTSecretFile string `yaml:"jwt_secret_file"`
	// JWTPublicKeyFile is a PEM RS256 public key; JWKSFile a JSON Web Key Set.
	JWTPublicKeyFile string `yaml:"jwt_public_key_file"`
	JWKSFile         string `yaml:"jwks_file"`
	// Issuer and Audience, when set, must match a JWT's iss and aud;
	// TenantClaim names the claim holding the tenant.
	Issuer      string `yaml:"issuer"`
	Audience    string `yaml:"audience"`
	TenantClaim string `yaml:"tenant_claim"`
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

// Default returns the configuration used with no file, env or flags.
func Default() Config {
	return Config{
		Listen:             "127.0.0.1:9000",
		DataDir:            "data",
		LogFormat:          "json",
		LogLevel:           "info",
		Heartbeat:          Duration(15 * time.Second),
		ShutdownTimeout:    Duration(20 * time.Second),
		PluginStartTimeout: Duration(10 * time.Second),
		MaxBodyBytes:       1 << 20,
		Telemetry:          Telemetry{ServiceName: "sidestream", TraceSampleRatio: 1},
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

// Keys are every settable key, as in YAML; nested ones are dotted
// ("telemetry.otlp_endpoint"). Their variables are SIDESTREAM_ + the key in
// upper case with dots as underscores (SIDESTREAM_TELEMETRY_OTLP_ENDPOINT).
var Keys = []string{"listen", "data_dir", "plugin_dir", "log_roots", "insecure", "debug_listen", "log_format",
	"log_level", "heartbeat", "shutdown_timeout", "plugin_start_timeout", "max_body_bytes",
	"telemetry.otlp_endpoint", "telemetry.otlp_headers", "telemetry.service_name", "telemetry.trace_sample_ratio",
	"auth.token_file", "auth.jwt_secret", "auth.jwt_secret_file", "auth.jwt_public_key_file", "auth.jwks_file",
	"auth.issuer", "auth.audience", "auth.tenant_claim",
	"queues.min_message_ttl", "queues.min_claim_ttl", "queues.driver",
	"cluster.name", "cluster.node_name", "cluster.listen", "cluster.routes", "cluster.nats_listen",
	"cluster.nats_url", "cluster.nats_creds", "cluster.nats_tls_ca", "cluster.nats_tls_cert", "cluster.nats_tls_key",
	"cluster.advertise", "cluster.replicas"}

// otelEnv are the standard OpenTelemetry variables, applied before the
// SIDESTREAM_* ones so that the more specific name wins.
var otelEnv = []struct{ name, key string }{
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint"},
	{"OTEL_EXPORTER_OTLP_HEADERS", "telemetry.otlp_headers"},
	{"OTEL_SERVICE_NAME", "telemetry.service_name"},
}

// EnvName is the environment variable of a key.
func EnvName(key string) string {
	return "SIDESTREAM_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// LoadEnv applies OTEL_* and then SIDESTREAM_<KEY> variables.
// SIDESTREAM_LOG_ROOTS is a list separated by the OS path list separator;
// header variables are "k1=v1,k2=v2" as OTel specifies.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	for _, e := range otelEnv {
		if v, ok := lookup(e.name); ok && v != "" {
			if err := c.Set(e.key, v); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	for _, key := range Keys {
		name := EnvName(key)
		v, ok := lookup(name)
		if !ok {
			continue
		}
		if err := c.Set(key, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// Set assigns one field by its YAML key from a string.
func (c *Config) Set(key, v string) error {
	var err error
	switch key {
	case "listen":
		c.Listen = v
	case "data_dir":
		c.DataDir = v
	case "plugin_dir":
		c.PluginDir = v
	case "log_roots":
		c.LogRoots = splitList(v)
	case "insecure":
		c.Insecure, err = strconv.ParseBool(v)
	case "debug_listen":
		c.DebugListen = v
	case "log_format":
		c.LogFormat = v
	case "log_level":
		c.LogLevel = v
	case "heartbeat":
		err = c.Heartbeat.Set(v)
	case "shutdown_timeout":
		err = c.ShutdownTimeout.Set(v)
	case "plugin_start_timeout":
		err = c.PluginStartTimeout.Set(v)
	case "max_body_bytes":
		c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64)
	default:
		return c.setNested(key, v)
	}
	if err != nil {
		return &FieldError{key, err.Error()}
	}
	return nil
}

func (c *Config) setNested(key, v string) error {
	var err error
	switch key {
	case "telemetry.otlp_endpoint":
		c.Telemetry.OTLPEndpoint = v
	case "telemetry.otlp_headers":
		c.Telemetry.OTLPHeaders, err = parseHeaders(v)
	case "telemetry.service_name":
		c.Telemetry.ServiceName = v
	case "telemetry.trace_sample_ratio":
		c.Telemetry.TraceSampleRatio, err = strconv.ParseFloat(v, 64)
	case "auth.token_file":
		c.Auth.TokenFile = v
	case "auth.jwt_secret":
		c.Auth.JWTSecret = v
	case "auth.jwt_secret_file":
		c.Auth.JWTSecretFile = v
	case "auth.jwt_public_key_file":
		c.Auth.JWTPublicKeyFile = v
	case "auth.issuer":
		c.Auth.Issuer = v
	case "auth.audience":
		c.Auth.Audience = v
	case "auth.tenant_claim":
		c.Auth.TenantClaim = v
	case "auth.jwks_file":
		c.Auth.JWKSFile = v
	case "queues.min_message_ttl":
		err = c.Queues.MinMessageTTL.Set(v)
	case "queues.min_claim_ttl":
		err = c.Queues.MinClaimTTL.Set(v)
	case "queues.driver":
		c.Queues.Driver = v
	default:
		return c.setCluster(key, v)
	}
	if err != nil {
		return &FieldError{key, err.Error()}
	}
	return nil
}

func (c *Config) setCluster(key, v string) error {
	var err error
	switch key {
	case "cluster.name":
		c.Cluster.Name = v
	case "cluster.node_name":
		c.Cluster.NodeName = v
	case "cluster.listen":
		c.Cluster.Listen = v
	case "cluster.routes":
		c.Cluster.Routes = splitComma(v)
	case "cluster.nats_listen":
		c.Cluster.NATSListen = v
	case "cluster.nats_url":
		c.Cluster.NATSURL = v
	case "cluster.nats_creds":
		c.Cluster.NATSCreds = v
	case "cluster.nats_tls_ca":
		c.Cluster.NATSTLSCA = v
	case "cluster.nats_tls_cert":
		c.Cluster.NATSTLSCert = v
	case "cluster.nats_tls_key":
		c.Cluster.NATSTLSKey = v
	case "cluster.advertise":
		c.Cluster.Advertise = v
	case "cluster.replicas":
		c.Cluster.Replicas, err = strconv.Atoi(v)
	default:
		return &FieldError{key, "unknown key"}
	}
	if err != nil {
		return &FieldError{key, err.Error()}
	}
	return nil
}

// parseHeaders reads "k1=v1,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS syntax).
// The error never quotes a value: values are usually credentials.
func parseHeaders(v string) (map[string]string, error) {
	out := map[string]string{}
	for i, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, val, ok := strings.Cut(part, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		out[k] = strings.TrimSpace(val)
	}
	return out, nil
}

func splitComma(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, string(os.PathListSeparator)) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
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
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("log_format", "must be json or text, not %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
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
	errs = append(errs, c.Telemetry.validate()...)
	errs = append(errs, c.Auth.validate()...)
	for i, r := range c.LogRoots {
		if !strings.HasPrefix(r, "/") {
			bad(fmt.Sprintf("log_roots[%d]", i), "%q must be an absolute path", r)
		}
	}
	if c.Queues.MinMessageTTL < 0 {
		bad("queues.min_message_ttl", "must not be negative")
	}
	if c.Queues.MinClaimTTL < 0 {
		bad("queues.min_claim_ttl", "must not be negative")
	}
	errs = append(errs, c.Cluster.validate(c.Queues.Driver)...)
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

func (c Cluster) validate(driver string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, args...)})
	}
	switch driver {
	case "", "bolt":
	case "jetstream":
		if !c.Enabled() {
			bad("queues.driver", "jetstream needs cluster mode (cluster.name or cluster.nats_url)")
		}
	default:
		bad("queues.driver", "must be bolt or jetstream, not %q", driver)
	}
	if c.Name != "" && c.NATSURL != "" {
		bad("cluster.nats_url", "either embed NATS (cluster.name) or join an external one (cluster.nats_url), not both")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		bad("cluster.replicas", "must be 0 (automatic) to 5, not %d", c.Replicas)
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
