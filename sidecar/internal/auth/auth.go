// Package auth is sidestream's bearer-token authentication: opaque tokens
// from a static token file and JWTs (HS256 with a secret file, RS256 with
// a PEM public key or a JWKS file). A token names a tenant and scopes.
// With nothing configured, auth is off and every request passes.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"gopkg.in/yaml.v3"
)

// Errors of the package.
var (
	// ErrUnauthenticated means no token, or a token that is not valid.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means a valid token that lacks the scope a route needs.
	ErrForbidden = errors.New("insufficient scope")
	// ErrConfig reports an unusable configuration file.
	ErrConfig = errors.New("auth: bad configuration")
)

// ScopeAll grants every scope.
const ScopeAll = "*"

// The scopes a token may hold. A route declares the one it needs (the
// route tables of httpapi and queueapi); "*" holds them all, and a prefix
// before ':' holds every scope under it ("streams" holds both streams
// scopes).
const (
	// ScopeStreamsRead reads streams (SSE, WebSocket, history), emitters
	// and the node's description (plugins, kinds, cluster).
	ScopeStreamsRead = "streams:read"
	// ScopeStreamsWrite changes what streams carry: tracker publishes and
	// emitter commands (the Fibonacci routes included).
	ScopeStreamsWrite = "streams:write"
	// ScopeEmittersAdmin creates and deletes emitters.
	ScopeEmittersAdmin = "emitters:admin"
	// ScopeQueuesRead and ScopeQueuesWrite are the queue API's.
	ScopeQueuesRead  = "queues:read"
	ScopeQueuesWrite = "queues:write"
	// ScopeMetricsRead reads /metrics.
	ScopeMetricsRead = "metrics:read"
	// ScopePublic marks a route served without a token (it is no scope a
	// token can hold).
	ScopePublic = "public"
)

// Scopes lists every scope a token may hold, for documentation and tests.
var Scopes = []string{ScopeStreamsRead, ScopeStreamsWrite, ScopeEmittersAdmin, ScopeQueuesRead, ScopeQueuesWrite, ScopeMetricsRead}

// CookieName is the cookie SSE and WebSocket clients may carry the token in.
const CookieName = "sidestream_token"

// Principal is who a token speaks for.
type Principal struct {
	Subject string
	Tenant  string
	Scopes  []string
}

// HasScope reports whether p holds scope: exactly, through "*", or
// through its prefix before ':' ("queues" grants "queues:write").
func (p Principal) HasScope(scope string) bool {
	for _, s := range p.Scopes {
		if s == ScopeAll || s == scope || strings.HasPrefix(scope, s+":") {
			return true
		}
	}
	return false
}

// Config says where tokens and keys come from. Any file set turns auth on.
type Config struct {
	// TokenFile is YAML or JSON: {"tokens":[{"token","tenant","subject","scopes":[…]}]}.
	TokenFile string
	// JWTSecretFile holds the HS256 secret (surrounding whitespace trimmed).
	JWTSecretFile string
	// JWTSecret is an inline HS256 secret (e.g. from the environment); it
	// wins over JWTSecretFile.
	JWTSecret string
	// JWTPublicKeyFile holds a PEM RSA public key for RS256.
	JWTPublicKeyFile string
	// JWKSFile holds a JSON Web Key Set (RSA keys for RS256, oct for HS256).
	JWKSFile string
	// Issuer and Audience, when set, must match the JWT's iss and aud.
	Issuer   string
	Audience string
	// TenantClaim names the JWT claim holding the tenant (default
	// "tenant"; "project_id" is read too when it is absent).
	TenantClaim string
	// Leeway tolerates clock skew on exp/nbf (default 30s).
	Leeway time.Duration
}

// Authenticator checks bearer tokens. The zero configuration yields one
// that is disabled.
type Authenticator struct {
	static map[[32]byte]staticToken
	jwt    *jwtVerifier
	log    *slog.Logger
}

type staticToken struct {
	token string
	p     Principal
}

// New loads every configured file. Errors name the file at fault.
func New(cfg Config, log *slog.Logger) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{log: log}
	if cfg.TokenFile != "" {
		m, err := loadTokenFile(cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		a.static = m
	}
	v, err := newJWTVerifier(cfg)
	if err != nil {
		return nil, err
	}
	a.jwt = v
	return a, nil
}

// Enabled reports whether any token source is configured.
func (a *Authenticator) Enabled() bool { return a != nil && (a.static != nil || a.jwt != nil) }

type tokenFile struct {
	Tokens []struct {
		Token   string   `yaml:"token"`
		Tenant  string   `yaml:"tenant"`
		Subject string   `yaml:"subject"`
		Scopes  []string `yaml:"scopes"`
	} `yaml:"tokens"`
}

func loadTokenFile(path string) (map[[32]byte]staticToken, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: token file: %w", ErrConfig, err)
	}
	var f tokenFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: token file %s: %w", ErrConfig, path, err)
	}
	m := make(map[[32]byte]staticToken, len(f.Tokens))
	for i, t := range f.Tokens {
		if len(t.Token) < 16 {
			return nil, fmt.Errorf("%w: token file %s: tokens[%d]: token must be at least 16 characters", ErrConfig, path, i)
		}
		if t.Tenant == "" {
			return nil, fmt.Errorf("%w: token file %s: tokens[%d]: tenant is required", ErrConfig, path, i)
		}
		h := sha256.Sum256([]byte(t.Token))
		if _, dup := m[h]; dup {
			return nil, fmt.Errorf("%w: token file %s: tokens[%d] repeats an earlier token", ErrConfig, path, i)
		}
		m[h] = staticToken{token: t.Token, p: Principal{Subject: t.Subject, Tenant: t.Tenant, Scopes: slices.Clone(t.Scopes)}}
	}
	return m, nil
}

// Authenticate resolves a raw bearer token.
func (a *Authenticator) Authenticate(token string) (Principal, error) {
	if token == "" {
		return Principal{}, fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	if a.static != nil {
		// The map is keyed by hash; the final compare is constant time.
		if st, ok := a.static[sha256.Sum256([]byte(token))]; ok &&
			subtle.ConstantTimeCompare([]byte(st.token), []byte(token)) == 1 {
			return st.p, nil
		}
	}
	if a.jwt != nil && strings.Count(token, ".") == 2 {
		return a.jwt.verify(token)
	}
	return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
}

const principalKey = "sidestream.auth.principal"

// Middleware authenticates each request of a route that is no stream
// (see Check); a failure (an error wrapping ErrUnauthenticated) is
// answered by fail, the error writer of the route family, so that the 401
// has the API's one error body; the chain then ends. With auth off it
// only calls the next handler.
func (a *Authenticator) Middleware(fail func(c *app.RequestContext, err error)) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		if _, err := a.Check(c, false); err != nil {
			fail(c, err)
			c.Abort()
			return
		}
		c.Next(ctx)
	}
}

// Check authenticates the request and keeps its principal for
// FromContext; with auth off it accepts every request. The token comes
// from "Authorization: Bearer" or "X-Auth-Token" (Zaqar clients); when
// stream is set (a GET stream route: SSE or WebSocket, which browsers
// cannot give headers) also from the sidestream_token cookie or the
// access_token query parameter. A failure wraps ErrUnauthenticated.
func (a *Authenticator) Check(c *app.RequestContext, stream bool) (Principal, error) {
	if !a.Enabled() {
		return Principal{}, nil
	}
	p, err := a.Authenticate(TokenFrom(c, stream))
	if err != nil {
		return Principal{}, err
	}
	c.Set(principalKey, p)
	return p, nil
}

// Require checks that p holds scope (ErrForbidden otherwise).
func Require(p Principal, scope string) error {
	if !p.HasScope(scope) {
		return fmt.Errorf("%w: the token lacks scope %q", ErrForbidden, scope)
	}
	return nil
}

// FromContext returns the principal Check stored (false when auth is
// off or Check did not run).
func FromContext(c *app.RequestContext) (Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return Principal{}, false
	}
	p, ok := v.(Principal)
	return p, ok
}

// TokenFrom extracts the bearer token of a request (see Check): the
// cookie and access_token only when stream is set and the method is GET,
// so a page elsewhere cannot make a write that rides on the cookie.
func TokenFrom(c *app.RequestContext, stream bool) string {
	if h := string(c.Request.Header.Peek("Authorization")); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	if h := string(c.Request.Header.Peek("X-Auth-Token")); h != "" {
		return h
	}
	if !stream || string(c.Method()) != "GET" {
		return ""
	}
	if v := c.Request.Header.Cookie(CookieName); len(v) > 0 {
		return string(v)
	}
	return string(c.QueryArgs().Peek("access_token"))
}
