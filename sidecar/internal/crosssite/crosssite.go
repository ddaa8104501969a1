// Package crosssite guards the HTTP API against web pages of other
// origins, which a browser lets reach a local port: a DNS-rebinding page
// (its Host names the attacker's domain), a form or fetch that changes
// state (Origin names another site), and a WebSocket, which browsers open
// across origins without CORS. It also answers CORS, preflights included,
// for an operator's allowlist of browser origins, "null" (a page opened
// from disk) only when listed.
//
// The package decides; the caller writes the refusal (ErrHost and
// ErrOrigin, mapped to 403 with the API's error body in one place).
package crosssite

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
)

// Refusals, both answered 403.
var (
	// ErrHost: the Host header names no name this node listens as.
	ErrHost = errors.New("host not allowed")
	// ErrOrigin: a request from another origin that may change state,
	// or a WebSocket, from an origin not in the allowlist.
	ErrOrigin = errors.New("origin not allowed")
)

// Policy is what the operator allows. The zero Policy allows same-origin
// requests and requests without Origin only, and checks no Host.
type Policy struct {
	// Origins are the allowed browser origins ("https://app.example:8443"),
	// "null" for pages opened from disk or sandboxed.
	Origins []string
	// Hosts, when set, are the only host names (without port) a request's
	// Host may carry: a loopback bind without auth sets them to its
	// listen and advertised names, so a rebinding page is refused.
	Hosts []string
}

// ParseOrigin checks an allowlist entry: "null" or scheme://host[:port].
func ParseOrigin(s string) (string, error) {
	if s == "null" {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin: want scheme://host[:port] or null", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// Preflight headers: what a browser client of the API sends.
const (
	allowHeaders  = "Authorization, Content-Type, X-Auth-Token, X-Project-Id, Client-ID, Last-Event-ID"
	allowMethods  = "GET, POST, PUT, PATCH, DELETE"
	exposeHeaders = "Location, Retry-After, X-Request-Id"
)

// Check inspects a request before its route runs. It returns done when
// it answered the request itself (a CORS preflight), or an error wrapping
// ErrHost or ErrOrigin to refuse it. writes says whether the route may
// change state (a GET route like /fib/next does).
func (p *Policy) Check(c *app.RequestContext, writes bool) (done bool, err error) {
	host := string(c.Request.Host())
	if len(p.Hosts) > 0 && !p.hostAllowed(host) {
		return false, fmt.Errorf("%w: %q is not a name of this node (DNS rebinding?)", ErrHost, host)
	}
	origin := string(c.Request.Header.Peek("Origin"))
	method := string(c.Method())
	preflight := method == http.MethodOptions && len(c.Request.Header.Peek("Access-Control-Request-Method")) > 0
	listed := origin != "" && slices.Contains(p.Origins, strings.ToLower(origin))
	if listed {
		h := &c.Response.Header
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", exposeHeaders)
	}
	if preflight {
		if !listed {
			return false, fmt.Errorf("%w: %q is not in the CORS allowlist (--cors-origin)", ErrOrigin, origin)
		}
		h := &c.Response.Header
		h.Set("Access-Control-Allow-Methods", allowMethods)
		h.Set("Access-Control-Allow-Headers", allowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		c.SetStatusCode(http.StatusNoContent)
		return true, nil
	}
	if listed || sameOrigin(origin, host) {
		return false, nil
	}
	upgrade := strings.EqualFold(string(c.Request.Header.Peek("Upgrade")), "websocket")
	changes := writes || (method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions)
	switch {
	case origin != "" && (changes || upgrade):
		return false, fmt.Errorf("%w: %q is not this node's origin nor in the CORS allowlist (--cors-origin)", ErrOrigin, origin)
	case origin == "" && (changes || upgrade) && crossSiteFetch(c):
		// A browser's no-cors request (an <img>, a form) from elsewhere
		// carries no Origin on GET, but says where it came from.
		return false, fmt.Errorf("%w: a %s request from another site", ErrOrigin, c.Request.Header.Peek("Sec-Fetch-Site"))
	}
	return false, nil
}

func crossSiteFetch(c *app.RequestContext) bool {
	s := string(c.Request.Header.Peek("Sec-Fetch-Site"))
	return s == "cross-site" || s == "same-site"
}

// sameOrigin reports whether origin names the host the request was sent
// to (the scheme is the transport's; the port must match).
func sameOrigin(origin, host string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

func (p *Policy) hostAllowed(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	for _, ok := range p.Hosts {
		if strings.EqualFold(ok, name) {
			return true
		}
	}
	return false
}

// LoopbackHosts are the names a loopback listener answers to, plus the
// listen and advertised hosts given (empty ones are left out).
func LoopbackHosts(more ...string) []string {
	out := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range more {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}
