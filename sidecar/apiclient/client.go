// Package apiclient is the Go client of the sidestream HTTP API: typed
// calls for the REST routes and a follower that streams a stream's events
// over SSE or WebSocket, reconnecting with backoff and resuming from the
// last delivered seq so that no event is lost or delivered twice.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sidestream/sidestream/sidecar/api"
)

// DefaultServer is the address a sidestream server listens on by default.
const DefaultServer = "http://127.0.0.1:9000"

// The variables clients read the server and the bearer token from when no
// flag or option says otherwise (see FromEnv).
const (
	EnvServer = "SIDESTREAM_SERVER"
	EnvToken  = "SIDESTREAM_TOKEN"
)

// FromEnv returns server and token from EnvServer and EnvToken, server
// defaulting to DefaultServer.
func FromEnv(lookup func(string) (string, bool)) (server, token string) {
	server, token = DefaultServer, ""
	if v, ok := lookup(EnvServer); ok && v != "" {
		server = v
	}
	if v, ok := lookup(EnvToken); ok {
		token = v
	}
	return server, token
}

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "sidestream-apiclient/1"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client talks to one sidestream server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	http      *http.Client
	token     string
	userAgent string
	tlsConfig *tls.Config
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the client used for REST calls and SSE streams.
// WebSocket connections are dialed by the package itself (an HTTP
// client cannot hand over its connection), with the DialContext and,
// unless WithTLSConfig says otherwise, the TLSClientConfig of hc's
// transport when that is an *http.Transport; its proxy is not used.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithToken sends "Authorization: Bearer token" on every request: REST
// calls, SSE streams and WebSocket handshakes alike.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithTLSConfig sets the TLS configuration of WebSocket connections to
// https/wss servers (SSE and REST use the HTTP client's transport). The
// default verifies the server against the system roots, TLS 1.2 or newer.
func WithTLSConfig(cfg *tls.Config) Option { return func(c *Client) { c.tlsConfig = cfg } }

// New returns a client of the server at baseURL ("http://127.0.0.1:9000").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("apiclient: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("apiclient: base URL %q: want http(s)://host[:port]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, http: &http.Client{}, userAgent: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the server address the client was made with.
func (c *Client) BaseURL() string { return c.base.String() }

// url returns the absolute URL of path (already escaped) with query q.
func (c *Client) url(path string, q url.Values) string {
	s := c.base.Scheme + "://" + c.base.Host + c.base.EscapedPath() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// header sets the headers every request carries.
func (c *Client) header(h http.Header) {
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
}

// do sends a request with an optional JSON body and decodes a 2xx JSON
// answer into out (if not nil); other answers become *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("apiclient: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return fmt.Errorf("apiclient: %w", err)
	}
	c.header(req.Header)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readAPIError(resp.StatusCode, resp.Body)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("apiclient: decode %s %s answer: %w", method, path, err)
	}
	return nil
}

// APIError is a non-2xx answer of the server.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Fields names the request fields at fault (400 validation errors).
	Fields []api.FieldError
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether the same request may succeed later (5xx,
// 408, 429); other 4xx answers will not change by retrying.
func (e *APIError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// IsUnauthenticated reports whether err is a 401 answer: no token, or
// one the server does not accept.
func IsUnauthenticated(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusUnauthorized
}

// readAPIError builds the error of an answer with status and body r,
// which is the JSON error shape or, from a proxy, anything else.
func readAPIError(status int, r io.Reader) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	return parseAPIError(status, raw)
}

// ParseAPIError builds the error of an answer with status and body raw,
// for clients of the API that make their own requests (the queue
// WebSocket's upgrade), so that every client reports one error shape.
func ParseAPIError(status int, raw []byte) *APIError { return parseAPIError(status, raw) }

func parseAPIError(status int, raw []byte) *APIError {
	if body, ok := api.DecodeError(raw); ok {
		return &APIError{Status: status, Code: body.Error.Code, Message: body.Error.Message, Fields: body.Error.Fields}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Message: msg}
}
