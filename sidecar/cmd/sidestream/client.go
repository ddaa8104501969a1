package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sidestream/sidestream/sidecar/apiclient"
)

// clientFlags are the flags every subcommand that talks to a server
// shares, declared here once: --server and --token.
type clientFlags struct {
	cmd               *cobra.Command
	server, token, ca string
	resolved          bool
}

// envCA is the variable --ca defaults from.
const envCA = "SIDESTREAM_CA"

// oldServerFlags are earlier names of --server (queue's --url, bench's
// --target), still accepted and hidden from help.
var oldServerFlags = map[string]bool{"url": true, "target": true}

// addClientFlags registers --server and --token on cmd. Their defaults
// come from SIDESTREAM_SERVER and SIDESTREAM_TOKEN when the command runs
// (never shown in --help, where a token would leak).
func addClientFlags(cmd *cobra.Command) *clientFlags {
	cf := &clientFlags{cmd: cmd}
	f := cmd.Flags()
	f.StringVar(&cf.server, "server", "", "base URL of the sidestream server (default $"+apiclient.EnvServer+", else "+apiclient.DefaultServer+")")
	f.StringVar(&cf.token, "token", "", "bearer token, needed when the server has auth on (default $"+apiclient.EnvToken+")")
	f.StringVar(&cf.ca, "ca", "", "PEM file of the CA that signed an https:// server's certificate, trusted besides the system roots (default $"+envCA+")")
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if oldServerFlags[name] {
			name = "server"
		}
		return pflag.NormalizedName(name)
	})
	return cf
}

// resolve fills what the user did not give from the environment, once.
func (cf *clientFlags) resolve() {
	if cf.resolved {
		return
	}
	cf.resolved = true
	server, token := apiclient.FromEnv(os.LookupEnv)
	if !cf.cmd.Flags().Changed("server") {
		cf.server = server
	}
	if !cf.cmd.Flags().Changed("token") {
		cf.token = token
	}
	if !cf.cmd.Flags().Changed("ca") {
		cf.ca = os.Getenv(envCA)
	}
}

// client returns the API client of the resolved server and token.
func (cf *clientFlags) client(agent string) (*apiclient.Client, error) {
	cf.resolve()
	opts := []apiclient.Option{apiclient.WithToken(cf.token), apiclient.WithUserAgent("sidestream-" + agent + "/" + version)}
	if cf.ca != "" {
		cfg, err := caConfig(cf.ca)
		if err != nil {
			return nil, err
		}
		opts = append(opts, apiclient.WithTLSConfig(cfg),
			apiclient.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}))
	}
	return apiclient.New(cf.server, opts...)
}

// caConfig trusts the CA certificates of a PEM file besides the system
// roots.
func caConfig(path string) (*tls.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("--ca: %s holds no PEM certificate", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// explain turns a 401 into advice on the token; other errors pass.
func (cf *clientFlags) explain(err error) error {
	if !apiclient.IsUnauthenticated(err) {
		return err
	}
	if cf.token == "" {
		return fmt.Errorf("%s requires a bearer token: pass --token or set %s (%w)", cf.server, apiclient.EnvToken, err)
	}
	return fmt.Errorf("%s refused the token given by --token or %s (%w)", cf.server, apiclient.EnvToken, err)
}
