package auth

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtVerifier checks HS256 and RS256 tokens against configured keys.
type jwtVerifier struct {
	secret []byte                    // HS256 secret file
	rsaKey *rsa.PublicKey            // RS256 PEM file
	rsaKid map[string]*rsa.PublicKey // RS256 JWKS keys by kid
	hsKid  map[string][]byte         // HS256 JWKS keys by kid
	parser *jwt.Parser
	claim  string
}

func newJWTVerifier(cfg Config) (*jwtVerifier, error) {
	if cfg.JWTSecret == "" && cfg.JWTSecretFile == "" && cfg.JWTPublicKeyFile == "" && cfg.JWKSFile == "" {
		return nil, nil
	}
	v := &jwtVerifier{claim: cfg.TenantClaim, rsaKid: map[string]*rsa.PublicKey{}, hsKid: map[string][]byte{}}
	if v.claim == "" {
		v.claim = "tenant"
	}
	if cfg.JWTSecret != "" {
		if v.secret = []byte(strings.TrimSpace(cfg.JWTSecret)); len(v.secret) < 32 {
			return nil, fmt.Errorf("%w: inline jwt secret: at least 32 bytes needed", ErrConfig)
		}
	} else if cfg.JWTSecretFile != "" {
		raw, err := os.ReadFile(cfg.JWTSecretFile)
		if err != nil {
			return nil, fmt.Errorf("%w: jwt secret: %w", ErrConfig, err)
		}
		if v.secret = []byte(strings.TrimSpace(string(raw))); len(v.secret) < 32 {
			return nil, fmt.Errorf("%w: jwt secret %s: at least 32 bytes needed", ErrConfig, cfg.JWTSecretFile)
		}
	}
	if cfg.JWTPublicKeyFile != "" {
		raw, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: jwt public key: %w", ErrConfig, err)
		}
		if v.rsaKey, err = jwt.ParseRSAPublicKeyFromPEM(raw); err != nil {
			return nil, fmt.Errorf("%w: jwt public key %s: %w", ErrConfig, cfg.JWTPublicKeyFile, err)
		}
	}
	if cfg.JWKSFile != "" {
		if err := v.loadJWKS(cfg.JWKSFile); err != nil {
			return nil, err
		}
	}
	leeway := cfg.Leeway
	if leeway <= 0 {
		leeway = 30 * time.Second
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"HS256", "RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

type jwks struct {
	Keys []struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		N   string `json:"n"`
		E   string `json:"e"`
		K   string `json:"k"`
	} `json:"keys"`
}

func (v *jwtVerifier) loadJWKS(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: jwks: %w", ErrConfig, err)
	}
	var set jwks
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("%w: jwks %s: %w", ErrConfig, path, err)
	}
	for i, k := range set.Keys {
		switch k.Kty {
		case "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
				return fmt.Errorf("%w: jwks %s: keys[%d]: bad RSA n or e", ErrConfig, path, i)
			}
			v.rsaKid[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "oct":
			b, err := base64.RawURLEncoding.DecodeString(k.K)
			if err != nil || len(b) < 32 {
				return fmt.Errorf("%w: jwks %s: keys[%d]: oct key must be base64url of at least 32 bytes", ErrConfig, path, i)
			}
			v.hsKid[k.Kid] = b
		default:
			return fmt.Errorf("%w: jwks %s: keys[%d]: unsupported kty %q", ErrConfig, path, i, k.Kty)
		}
	}
	return nil
}

// key picks the verification key by algorithm and kid; an HS256 token is
// never checked against an RSA key or the reverse.
func (v *jwtVerifier) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	switch t.Method.Alg() {
	case "HS256":
		if k, ok := v.hsKid[kid]; ok {
			return k, nil
		}
		if v.secret != nil {
			return v.secret, nil
		}
	case "RS256":
		if k, ok := v.rsaKid[kid]; ok {
			return k, nil
		}
		if v.rsaKey != nil {
			return v.rsaKey, nil
		}
	}
	return nil, fmt.Errorf("no %s key for kid %q", t.Method.Alg(), kid)
}

func (v *jwtVerifier) verify(raw string) (Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.key); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	p := Principal{}
	p.Subject, _ = claims["sub"].(string)
	p.Tenant, _ = claims[v.claim].(string)
	if p.Tenant == "" {
		p.Tenant, _ = claims["project_id"].(string)
	}
	if p.Tenant == "" {
		return Principal{}, fmt.Errorf("%w: token has no %q claim", ErrUnauthenticated, v.claim)
	}
	switch s := claims["scope"].(type) {
	case string:
		p.Scopes = strings.Fields(s)
	}
	if list, ok := claims["scopes"].([]any); ok {
		for _, s := range list {
			if str, ok := s.(string); ok {
				p.Scopes = append(p.Scopes, str)
			}
		}
	}
	return p, nil
}
