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
	Insecure  bool     `yaml:"insecure"`
	LogFormat string   `yaml:"log_format"`
	LogLevel  string   `yaml:"log_level"`
	Heartbeat Duration `yaml:"heartbeat"`
	// ShutdownTimeout bounds the drain on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// PluginStartTimeout bounds a plugin's handshake.
	PluginStartTimeout Duration `yaml:"plugin_start_timeout"`
	MaxBodyBytes       int64    `yaml:"max_body_bytes"`
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

// envKeys maps SIDESTREAM_* variables to setters, by YAML key.
var envKeys = []string{"listen", "data_dir", "plugin_dir", "log_roots", "insecure", "log_format",
	"log_level", "heartbeat", "shutdown_timeout", "plugin_start_timeout", "max_body_bytes"}

// LoadEnv applies SIDESTREAM_<KEY> variables (KEY = upper-case YAML key).
// SIDESTREAM_LOG_ROOTS is a list separated by the OS path list separator.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	for _, key := range envKeys {
		name := "SIDESTREAM_" + strings.ToUpper(key)
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
		return &FieldError{key, "unknown key"}
	}
	if err != nil {
		return &FieldError{key, err.Error()}
	}
	return nil
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
	} else if !c.Insecure && !IsLoopback(host) {
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
	for i, r := range c.LogRoots {
		if !strings.HasPrefix(r, "/") {
			bad(fmt.Sprintf("log_roots[%d]", i), "%q must be an absolute path", r)
		}
	}
	return errors.Join(errs...)
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
