package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidestream/sidestream/sidecar/internal/config"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sidestream.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// TestPrecedence: defaults < file < env < flags, for every kind of field.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	const file = `
listen: 127.0.0.1:7001
data_dir: /file/data
heartbeat: 20s
telemetry:
  otlp_endpoint: http://file:4317
  service_name: from-file
auth:
  token_file: /file/tokens
`
	tests := []struct {
		name  string
		file  bool
		env   map[string]string
		flags []config.Setting
		check func(config.Config) string // returns what is wrong
	}{
		{"defaults", false, nil, nil, func(c config.Config) string {
			return diff(c.Listen, "127.0.0.1:9000", c.DataDir, "data", c.Telemetry.ServiceName, "sidestream", c.Telemetry.OTLPEndpoint, "")
		}},
		{"file over defaults", true, nil, nil, func(c config.Config) string {
			return diff(c.Listen, "127.0.0.1:7001", c.DataDir, "/file/data", time.Duration(c.Heartbeat).String(), "20s",
				c.Telemetry.OTLPEndpoint, "http://file:4317", c.Auth.TokenFile, "/file/tokens", c.LogFormat, "json")
		}},
		{"env over file", true, map[string]string{
			"SIDESTREAM_LISTEN": "127.0.0.1:7002", "SIDESTREAM_HEARTBEAT": "30s",
			"SIDESTREAM_TELEMETRY_OTLP_ENDPOINT": "http://env:4317", "SIDESTREAM_AUTH_TOKEN_FILE": "/env/tokens",
		}, nil, func(c config.Config) string {
			return diff(c.Listen, "127.0.0.1:7002", c.DataDir, "/file/data", time.Duration(c.Heartbeat).String(), "30s",
				c.Telemetry.OTLPEndpoint, "http://env:4317", c.Auth.TokenFile, "/env/tokens")
		}},
		{"standard OTEL env over file", true, map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4317", "OTEL_SERVICE_NAME": "node-7",
		}, nil, func(c config.Config) string {
			return diff(c.Telemetry.OTLPEndpoint, "http://otel:4317", c.Telemetry.ServiceName, "node-7")
		}},
		{"SIDESTREAM env over OTEL env", false, map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4317", "SIDESTREAM_TELEMETRY_OTLP_ENDPOINT": "http://mine:4317",
		}, nil, func(c config.Config) string { return diff(c.Telemetry.OTLPEndpoint, "http://mine:4317") }},
		{"flags over env", true, map[string]string{"SIDESTREAM_LISTEN": "127.0.0.1:7002", "SIDESTREAM_DATA_DIR": "/env/data"},
			[]config.Setting{{Key: "listen", Value: "127.0.0.1:7003"}, {Key: "telemetry.otlp_endpoint", Value: "http://flag:4317"}},
			func(c config.Config) string {
				return diff(c.Listen, "127.0.0.1:7003", c.DataDir, "/env/data", c.Telemetry.OTLPEndpoint, "http://flag:4317")
			}},
		{"env list and bool", false, map[string]string{"SIDESTREAM_LOG_ROOTS": "/a" + string(os.PathListSeparator) + "/b", "SIDESTREAM_INSECURE": "true"}, nil,
			func(c config.Config) string {
				if !c.Insecure || !reflect.DeepEqual(c.LogRoots, []string{"/a", "/b"}) {
					return "insecure/log_roots not applied from env"
				}
				return ""
			}},
		{"otlp headers from env", false, map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer x, x-team = obs"}, nil,
			func(c config.Config) string {
				if !reflect.DeepEqual(c.Telemetry.OTLPHeaders, map[string]string{"authorization": "Bearer x", "x-team": "obs"}) {
					return "headers: " + strings.Join(keys(c.Telemetry.OTLPHeaders), ",")
				}
				return ""
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := config.Sources{Env: env(tc.env), Flags: tc.flags}
			if tc.file {
				src.File = writeFile(t, file)
			}
			cfg, err := config.Load(src)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if msg := tc.check(cfg); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// diff compares got/want pairs and describes the first mismatch.
func diff(pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] != pairs[i+1] {
			return "got " + pairs[i] + ", want " + pairs[i+1]
		}
	}
	return ""
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// TestValidationNamesTheField: every invalid value is reported with its key,
// all at once, and errors are FieldErrors.
func TestValidationNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value, field string
	}{
		{"listen", "nonsense", "listen"},
		{"listen", "0.0.0.0:9000", "listen"},
		{"data_dir", "", "data_dir"},
		{"log_format", "xml", "log_format"},
		{"log_level", "loud", "log_level"},
		{"heartbeat", "0s", "heartbeat"},
		{"shutdown_timeout", "-1s", "shutdown_timeout"},
		{"plugin_start_timeout", "0s", "plugin_start_timeout"},
		{"max_body_bytes", "10", "max_body_bytes"},
		{"log_roots", "relative/dir", "log_roots[0]"},
		{"telemetry.otlp_endpoint", "collector:4317", "telemetry.otlp_endpoint"},
		{"telemetry.service_name", "", "telemetry.service_name"},
		{"telemetry.trace_sample_ratio", "1.5", "telemetry.trace_sample_ratio"},
		{"telemetry.trace_sample_ratio", "0", "telemetry.trace_sample_ratio"},
		{"auth.jwt_secret", "short-secret-value", "auth.jwt_secret"},
		{"cluster.name", "prod", "cluster.routes"}, // an embedded cluster without routes
		{"cluster.replicas", "7", "cluster.replicas"},
		{"cluster.advertise", "10.0.0.1:9000", "cluster.advertise"},
		{"queues.driver", "jetstream", "queues.driver"}, // not in cluster mode
	}
	for _, tc := range tests {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(config.Sources{Flags: []config.Setting{{Key: tc.key, Value: tc.value, Source: "--x"}}})
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.key, tc.value)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v does not name field %s", err, tc.field)
			}
			if tc.key == "auth.jwt_secret" && strings.Contains(err.Error(), tc.value) {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
	t.Run("parse errors name the key", func(t *testing.T) {
		t.Parallel()
		for _, kv := range [][2]string{{"heartbeat", "soon"}, {"insecure", "maybe"}, {"max_body_bytes", "big"},
			{"telemetry.trace_sample_ratio", "half"}, {"telemetry.otlp_headers", "novalue"}, {"nope", "x"}} {
			_, err := config.Load(config.Sources{Flags: []config.Setting{{Key: kv[0], Value: kv[1], Source: "--" + kv[0]}}})
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Field != kv[0] {
				t.Errorf("%s=%q: error %v does not name the field", kv[0], kv[1], err)
			}
		}
	})
	t.Run("all errors at once", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load(config.Sources{File: writeFile(t, "log_format: xml\nlog_level: loud\ntelemetry:\n  trace_sample_ratio: 7\n")})
		for _, f := range []string{"log_format", "log_level", "telemetry.trace_sample_ratio"} {
			if err == nil || !strings.Contains(err.Error(), f+":") {
				t.Errorf("joined error %v lacks %s", err, f)
			}
		}
	})
	t.Run("unknown file key", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load(config.Sources{File: writeFile(t, "telemetry:\n  otlp_endpiont: http://x:4317\n")})
		if err == nil || !strings.Contains(err.Error(), "otlp_endpiont") {
			t.Errorf("misspelled key not reported by name: %v", err)
		}
	})
}

// Auth configured makes a non-loopback listen address acceptable without
// --insecure (DESIGN: refuse only when nothing protects it).
func TestNonLoopbackNeedsAuthOrInsecure(t *testing.T) {
	t.Parallel()
	open := config.Setting{Key: "listen", Value: "0.0.0.0:9000"}
	for _, tc := range []struct {
		name  string
		extra []config.Setting
		ok    bool
	}{
		{"nothing", nil, false},
		{"insecure", []config.Setting{{Key: "insecure", Value: "true"}}, true},
		{"token file", []config.Setting{{Key: "auth.token_file", Value: "/etc/sidestream/tokens"}}, true},
		{"jwt secret", []config.Setting{{Key: "auth.jwt_secret", Value: strings.Repeat("k", 32)}}, true},
	} {
		_, err := config.Load(config.Sources{Flags: append([]config.Setting{open}, tc.extra...)})
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

const jwtSecret = "hs256-very-secret-key-0123456789abcdef"

func secretConfig(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.Load(config.Sources{Env: env(map[string]string{
		"SIDESTREAM_AUTH_JWT_SECRET": jwtSecret,
		"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer otlp-token-42",
	})})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRedactedHidesSecretsAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	cfg := secretConfig(t)
	r := cfg.Redacted()
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{jwtSecret, "otlp-token-42"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted YAML holds %q:\n%s", secret, out)
		}
	}
	if r.Auth.JWTSecret != config.RedactedValue || r.Telemetry.OTLPHeaders["authorization"] != config.RedactedValue {
		t.Errorf("secrets not marked redacted: %+v %+v", r.Auth, r.Telemetry.OTLPHeaders)
	}
	if cfg.Auth.JWTSecret != jwtSecret || cfg.Telemetry.OTLPHeaders["authorization"] != "Bearer otlp-token-42" {
		t.Error("Redacted modified the original config")
	}
	if r.Listen != cfg.Listen || r.Auth.TokenFile != cfg.Auth.TokenFile {
		t.Error("Redacted changed non-secret fields")
	}
	if config.Default().Redacted().Auth.JWTSecret != "" {
		t.Error("an unset secret should stay empty, so the output tells it is unset")
	}
}

// Every field tagged secret is blanked, including ones added later: set
// every string field to a marker and look for it in the output.
func TestRedactedCoversEveryTaggedField(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	v := reflect.ValueOf(&cfg).Elem()
	var tagged int
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			switch {
			case fv.Kind() == reflect.Struct:
				walk(fv)
			case f.Tag.Get("secret") == "true" && fv.Kind() == reflect.String:
				tagged++
				fv.SetString("MARKER-" + f.Name)
			case f.Tag.Get("secret") == "true" && fv.Kind() == reflect.Map:
				tagged++
				fv.Set(reflect.ValueOf(map[string]string{"k": "MARKER-" + f.Name}))
			}
		}
	}
	walk(v)
	if tagged < 2 {
		t.Fatalf("found %d secret fields, want at least jwt_secret and otlp_headers", tagged)
	}
	out, _ := yaml.Marshal(cfg.Redacted())
	if strings.Contains(string(out), "MARKER-") {
		t.Errorf("a secret survived redaction:\n%s", out)
	}
}

func TestLogValueRedacts(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", secretConfig(t))
	if strings.Contains(buf.String(), jwtSecret) || strings.Contains(buf.String(), "otlp-token-42") {
		t.Errorf("log line holds a secret: %s", buf.String())
	}
	if !strings.Contains(buf.String(), config.RedactedValue) {
		t.Errorf("log line does not show the secret as redacted: %s", buf.String())
	}
}

// Every key in Keys can be set, so env and flags reach every field.
func TestEveryKeyIsSettable(t *testing.T) {
	t.Parallel()
	values := map[string]string{"insecure": "true", "debug_listen": "127.0.0.1:6060", "heartbeat": "1s", "shutdown_timeout": "1s",
		"plugin_start_timeout": "1s", "max_body_bytes": "2048", "telemetry.trace_sample_ratio": "0.5",
		"telemetry.otlp_headers": "a=b", "queues.min_message_ttl": "1s", "queues.min_claim_ttl": "1s",
		"cluster.replicas": "3", "cluster.export_linger": "1ms", "limits.max_connections": "100", "limits.max_connections_per_ip": "10",
		"limits.write_rate": "2.5", "limits.write_burst": "5", "magic_rate": "2", "wake_linger": "1ms"}
	for _, k := range config.Keys {
		key := k.Name
		cfg := config.Default()
		v, ok := values[key]
		if !ok {
			v = "/x"
		}
		if k.Kind() == "objects" {
			v = k.Example
		}
		if err := cfg.Set(key, v); err != nil {
			t.Errorf("Set(%q): %v", key, err)
		}
		if reflect.DeepEqual(cfg, config.Default()) {
			t.Errorf("Set(%q, %q) changed nothing", key, v)
		}
	}
}
