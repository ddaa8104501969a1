package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Emitter is a stored emitter as the server describes it.
type Emitter struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	Config    json.RawMessage   `json:"config"`
	Labels    map[string]string `json:"labels,omitempty"`
	Retention Retention         `json:"retention"`
	CreatedAt time.Time         `json:"created_at"`
}

// Retention bounds an emitter's history. In a request it replaces the
// server's default policy as a whole; zero MaxEvents and empty MaxAge keep
// the defaults of those two.
type Retention struct {
	Persist   bool   `json:"persist"`
	MaxEvents int    `json:"max_events,omitempty"`
	MaxAge    string `json:"max_age,omitempty"` // a Go duration, "24h"
}

// CreateEmitter is the body of POST /api/v1/emitters.
type CreateEmitter struct {
	ID        string            `json:"id,omitempty"`
	Kind      string            `json:"kind"`
	Config    json.RawMessage   `json:"config,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Retention *Retention        `json:"retention,omitempty"`
}

// ListEmitters filters and pages GET /api/v1/emitters.
type ListEmitters struct {
	Kind   string
	Labels map[string]string // every label must match
	After  string            // the Next of the previous page
	Limit  int               // 0: the server's default
}

// EmitterPage is one page of emitters; Next is empty on the last page.
type EmitterPage struct {
	Items []Emitter `json:"items"`
	Next  string    `json:"next"`
}

// EventPage is one page of a stream's history, oldest first. Next is the
// after of the following page; Head is the stream's newest seq.
type EventPage struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"`
	Head   uint64  `json:"head"`
}

// Plugin is one plugin process.
type Plugin struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	PID       int    `json:"pid"`
	State     string `json:"state"`
	Restarts  int    `json:"restarts"`
	Instances int    `json:"instances"`
	LastError string `json:"last_error,omitempty"`
}

// LogRequest is the body of PUT /log (all optional; synthetic by default).
type LogRequest struct {
	Source    string     `json:"source,omitempty"` // "synthetic" or "file"
	Rate      float64    `json:"rate,omitempty"`   // lines per second (synthetic)
	Path      string     `json:"path,omitempty"`   // file source
	Guest     string     `json:"guest,omitempty"`
	Retention *Retention `json:"retention,omitempty"`
}

// FibState is the answer of the /fib/* routes; Value is decimal.
type FibState struct {
	Position uint64 `json:"position"`
	Value    string `json:"value"`
}

// CreateEmitter creates an emitter and returns it as stored.
func (c *Client) CreateEmitter(ctx context.Context, req CreateEmitter) (Emitter, error) {
	var out Emitter
	err := c.do(ctx, http.MethodPost, "/api/v1/emitters", nil, req, &out)
	return out, err
}

// ListEmitters returns one page of emitters matching f.
func (c *Client) ListEmitters(ctx context.Context, f ListEmitters) (EmitterPage, error) {
	q := url.Values{}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	for k, v := range f.Labels {
		q.Add("label", k+":"+v)
	}
	if f.After != "" {
		q.Set("after", f.After)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out EmitterPage
	err := c.do(ctx, http.MethodGet, "/api/v1/emitters", q, nil, &out)
	return out, err
}

// GetEmitter returns the emitter id.
func (c *Client) GetEmitter(ctx context.Context, id string) (Emitter, error) {
	var out Emitter
	err := c.do(ctx, http.MethodGet, "/api/v1/emitters/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// DeleteEmitter deletes the emitter id and its history.
func (c *Client) DeleteEmitter(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/emitters/"+url.PathEscape(id), nil, nil, nil)
}

// Command runs command name on emitter id with args (nil: none) and
// returns the plugin's JSON result.
func (c *Client) Command(ctx context.Context, id, name string, args any) (json.RawMessage, error) {
	var out json.RawMessage
	path := "/api/v1/emitters/" + url.PathEscape(id) + "/commands/" + url.PathEscape(name)
	err := c.do(ctx, http.MethodPost, path, nil, args, &out)
	return out, err
}

// Events returns up to limit events of stream after seq after (limit 0:
// the server's default page).
func (c *Client) Events(ctx context.Context, stream string, after uint64, limit int) (EventPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out EventPage
	err := c.do(ctx, http.MethodGet, "/api/v1/streams/"+url.PathEscape(stream)+"/events", q, nil, &out)
	return out, err
}

// Plugins lists the plugin processes.
func (c *Client) Plugins(ctx context.Context) ([]Plugin, error) {
	var out struct {
		Items []Plugin `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/plugins", nil, nil, &out)
	return out.Items, err
}

// CreateLog creates a log emitter with PUT /log and returns its id.
func (c *Client) CreateLog(ctx context.Context, req LogRequest) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, http.MethodPut, "/log", nil, req, &out)
	return out.ID, err
}

// Fib runs a Fibonacci route: "current", "next", "previous" or "reset".
func (c *Client) Fib(ctx context.Context, name string) (FibState, error) {
	var out FibState
	err := c.do(ctx, http.MethodPost, "/fib/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// Track publishes data (any JSON value) to user's tracker stream and
// returns its seq.
func (c *Client) Track(ctx context.Context, user string, data any) (uint64, error) {
	var out struct {
		Seq uint64 `json:"seq"`
	}
	err := c.do(ctx, http.MethodPost, "/track/"+url.PathEscape(user), nil, data, &out)
	return out.Seq, err
}
