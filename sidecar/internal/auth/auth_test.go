package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/sidestream/sidestream/sidecar/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Hertz's process-wide date ticker and its post-start hook sleeper.
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol.UpdateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/app/server.(*Hertz).Spin.(*Hertz).initOnRunHooks.func2.1"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/common/timer.(*timer).run"),
	)
}

const secret = "0123456789abcdef0123456789abcdef-secret"

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type keys struct {
	rsa, other *rsa.PrivateKey
	pemPath    string
	pemBytes   []byte
	jwksPath   string
}

func newKeys(t *testing.T) keys {
	t.Helper()
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r2", "n": b64(k2.N.Bytes()), "e": b64(big.NewInt(int64(k2.E)).Bytes())},
		{"kty": "oct", "kid": "h1", "k": b64([]byte(secret + "-jwks"))},
	}}
	raw, _ := json.Marshal(set)
	return keys{rsa: k1, other: k2, pemBytes: pemBytes, pemPath: write(t, "key.pem", string(pemBytes)), jwksPath: write(t, "jwks.json", string(raw))}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "tenant": "t1", "scope": "queues:read queues:write", "exp": time.Now().Add(time.Hour).Unix()}
	for _, m := range mods {
		m(c)
	}
	return c
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ks := newKeys(t)
	tokens := write(t, "tokens.yaml", "tokens:\n  - {token: static-token-0123456789, tenant: t9, subject: bot, scopes: [queues]}\n")
	a, err := New(Config{
		TokenFile: tokens, JWTSecretFile: write(t, "secret", secret+"\n"),
		JWTPublicKeyFile: ks.pemPath, JWKSFile: ks.jwksPath, Issuer: "iss1", Audience: "sidestream",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := func(c jwt.MapClaims) { c["iss"], c["aud"] = "iss1", "sidestream" }
	tests := []struct {
		name   string
		token  string
		tenant string // "" means must fail
	}{
		{"static", "static-token-0123456789", "t9"},
		{"static wrong", "static-token-0123456780", ""},
		{"empty", "", ""},
		{"hs256", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good)), "t1"},
		{"hs256 jwks kid", sign(t, jwt.SigningMethodHS256, []byte(secret+"-jwks"), "h1", claims(good)), "t1"},
		{"rs256 pem", sign(t, jwt.SigningMethodRS256, ks.rsa, "", claims(good)), "t1"},
		{"rs256 jwks kid", sign(t, jwt.SigningMethodRS256, ks.other, "r2", claims(good)), "t1"},
		{"project_id claim", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good, func(c jwt.MapClaims) { delete(c, "tenant"); c["project_id"] = "p7" })), "p7"},
		{"hs256 wrong secret", sign(t, jwt.SigningMethodHS256, []byte(secret+"x"), "", claims(good)), ""},
		{"rs256 unknown key", sign(t, jwt.SigningMethodRS256, ks.other, "", claims(good)), ""},
		// Algorithm confusion: HS256 keyed with the RSA public key bytes.
		{"alg confusion", sign(t, jwt.SigningMethodHS256, ks.pemBytes, "", claims(good)), ""},
		{"none alg", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(good)), ""},
		{"hs512", sign(t, jwt.SigningMethodHS512, []byte(secret), "", claims(good)), ""},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), ""},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good, func(c jwt.MapClaims) { delete(c, "exp") })), ""},
		{"no tenant", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good, func(c jwt.MapClaims) { delete(c, "tenant") })), ""},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good, func(c jwt.MapClaims) { c["iss"] = "evil" })), ""},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good, func(c jwt.MapClaims) { c["aud"] = "other" })), ""},
		{"garbage", "a.b.c", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := a.Authenticate(tc.token)
			if tc.tenant == "" {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("accepted (%+v, %v)", p, err)
				}
				return
			}
			if err != nil || p.Tenant != tc.tenant {
				t.Fatalf("principal %+v, err %v; want tenant %s", p, err, tc.tenant)
			}
		})
	}
	p, _ := a.Authenticate(sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(good)))
	if p.Subject != "alice" || !slices.Equal(p.Scopes, []string{"queues:read", "queues:write"}) {
		t.Fatalf("jwt principal %+v", p)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	p := Principal{Scopes: []string{"queues", "emitters:read"}}
	for scope, want := range map[string]bool{"queues:write": true, "queues": true, "emitters:read": true, "emitters:write": false, "queuesx": false} {
		if got := p.HasScope(scope); got != want {
			t.Errorf("HasScope(%q) = %v", scope, got)
		}
	}
	if !(Principal{Scopes: []string{"*"}}).HasScope("anything") {
		t.Error("* does not grant everything")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]Config{
		"missing token file": {TokenFile: "/nonexistent/tokens"},
		"short token":        {TokenFile: write(t, "t1", "tokens: [{token: short, tenant: a}]")},
		"no tenant":          {TokenFile: write(t, "t2", "tokens: [{token: long-enough-token-123}]")},
		"duplicate":          {TokenFile: write(t, "t3", "tokens: [{token: long-enough-token-123, tenant: a}, {token: long-enough-token-123, tenant: b}]")},
		"short secret":       {JWTSecretFile: write(t, "s", "short")},
		"bad pem":            {JWTPublicKeyFile: write(t, "p", "not a key")},
		"bad jwks":           {JWKSFile: write(t, "j", `{"keys":[{"kty":"EC"}]}`)},
	}
	for name, cfg := range tests {
		if _, err := New(cfg, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	a, err := New(Config{}, nil)
	if err != nil || a.Enabled() {
		t.Fatalf("empty config: enabled=%v err=%v", a.Enabled(), err)
	}
}

// serve runs a in front of a handler echoing the principal.
func serve(t *testing.T, a *Authenticator) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.WithTransport(standard.NewTransporter), server.WithListener(ln), server.WithDisablePrintRoute(true))
	refuse := func(c *app.RequestContext, err error) {
		c.Data(http.StatusUnauthorized, "application/json", api.NewError("unauthenticated", err.Error()).Encode())
	}
	h.GET("/who", a.Middleware(refuse), func(ctx context.Context, c *app.RequestContext) {
		p, ok := FromContext(c)
		c.String(http.StatusOK, fmt.Sprintf("%v:%s", ok, p.Tenant))
	})
	stream := func(ctx context.Context, c *app.RequestContext) {
		if _, err := a.Check(c, true); err != nil {
			refuse(c, err)
			return
		}
		p, ok := FromContext(c)
		c.String(http.StatusOK, fmt.Sprintf("%v:%s", ok, p.Tenant))
	}
	h.GET("/stream", stream)
	h.POST("/stream", stream)
	go h.Spin()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url string, hdr map[string]string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, hdr)
}

func do(t *testing.T, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	var resp *http.Response
	var err error
	for range 100 { // the server may not accept yet
		if resp, err = noKeepAlive.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	tok := "static-token-0123456789"
	a, err := New(Config{TokenFile: write(t, "tokens.json", `{"tokens":[{"token":"`+tok+`","tenant":"t9"}]}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, a)
	tests := []struct {
		name   string
		method string
		url    string
		hdr    map[string]string
		code   int
		body   string
	}{
		{"no token", "GET", "/who", nil, 401, `"code":"unauthenticated"`},
		{"bearer", "GET", "/who", map[string]string{"Authorization": "Bearer " + tok}, 200, "true:t9"},
		{"x-auth-token", "GET", "/who", map[string]string{"X-Auth-Token": tok}, 200, "true:t9"},
		{"bad bearer", "GET", "/who", map[string]string{"Authorization": "Bearer nope"}, 401, "unauthenticated"},
		{"basic scheme", "GET", "/who", map[string]string{"Authorization": "Basic " + tok}, 401, "unauthenticated"},
		{"query on plain request", "GET", "/who?access_token=" + tok, nil, 401, "unauthenticated"},
		// Saying text/event-stream does not make a route a stream route.
		{"query on sse accept", "GET", "/who?access_token=" + tok, map[string]string{"Accept": "text/event-stream"}, 401, "unauthenticated"},
		{"cookie on sse accept", "GET", "/who", map[string]string{"Accept": "text/event-stream", "Cookie": CookieName + "=" + tok}, 401, "unauthenticated"},
		{"cookie on plain request", "GET", "/who", map[string]string{"Cookie": CookieName + "=" + tok}, 401, "unauthenticated"},
		{"query on stream route", "GET", "/stream?access_token=" + tok, nil, 200, "true:t9"},
		{"cookie on stream route", "GET", "/stream", map[string]string{"Cookie": CookieName + "=" + tok}, 200, "true:t9"},
		{"cookie on a POST", "POST", "/stream", map[string]string{"Cookie": CookieName + "=" + tok}, 401, "unauthenticated"},
		{"query on a POST", "POST", "/stream?access_token=" + tok, nil, 401, "unauthenticated"},
	}
	for _, tc := range tests {
		code, body := do(t, tc.method, base+tc.url, tc.hdr)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, code, body, tc.code, tc.body)
		}
	}
	off, _ := New(Config{}, nil)
	if code, body := get(t, serve(t, off)+"/who", nil); code != 200 || body != "false:" {
		t.Errorf("auth off: %d %q", code, body)
	}
}

// An inline HS256 secret (from the environment) verifies like a file one
// and is refused when too short.
func TestInlineJWTSecret(t *testing.T) {
	t.Parallel()
	a, err := New(Config{JWTSecret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Enabled() {
		t.Fatal("inline secret did not turn auth on")
	}
	p, err := a.Authenticate(sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims()))
	if err != nil || p.Tenant != "t1" {
		t.Fatalf("principal %+v, err %v", p, err)
	}
	if _, err := New(Config{JWTSecret: "short"}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("short inline secret: %v", err)
	}
}
