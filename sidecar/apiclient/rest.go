package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sidestream/sidestream/sidecar/api"
)

// ListEmitters filters and pages GET /api/v1/emitters.
type ListEmitters struct {
	Kind   string
	Labels map[string]string // every label must match
	After  string            // the Next of the previous page
	Limit  int               // 0: the server's default
}

// CreateEmitter creates an emitter and returns it as stored.
func (c *Client) CreateEmitter(ctx context.Context, req api.CreateEmitter) (api.Emitter, error) {
	var out api.Emitter
	err := c.do(ctx, http.MethodPost, "/api/v1/emitters", nil, req, &out)
	return out, err
}

// ListEmitters returns one page of emitters matching f.
func (c *Client) ListEmitters(ctx context.Context, f ListEmitters) (api.EmitterPage, error) {
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
	var out api.EmitterPage
	err := c.do(ctx, http.MethodGet, "/api/v1/emitters", q, nil, &out)
	return out, err
}

// GetEmitter returns the emitter id.
func (c *Client) GetEmitter(ctx context.Context, id string) (api.Emitter, error) {
	var out api.Emitter
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
func (c *Client) Events(ctx context.Context, stream string, after uint64, limit int) (api.EventPage, error) {
	return c.EventsMatching(ctx, stream, after, limit, "")
}

// EventsMatching is Events keeping only the events filter matches (a CEL
// expression as FollowOptions.Filter; "": every event). The server bounds
// the events one page looks at, so a rare match may answer a short or
// empty page while Next < Head: read on from Next. A bad expression is a
// 400 invalid_filter *APIError naming its position.
func (c *Client) EventsMatching(ctx context.Context, stream string, after uint64, limit int, filter string) (api.EventPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if filter != "" {
		q.Set("filter", filter)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.EventPage
	err := c.do(ctx, http.MethodGet, "/api/v1/streams/"+url.PathEscape(stream)+"/events", q, nil, &out)
	return out, err
}

// Plugins lists the plugin processes.
func (c *Client) Plugins(ctx context.Context) ([]api.Plugin, error) {
	var out api.Items[api.Plugin]
	err := c.do(ctx, http.MethodGet, "/api/v1/plugins", nil, nil, &out)
	return out.Items, err
}

// Guests lists the node's guests and the emitters attached to them.
func (c *Client) Guests(ctx context.Context) ([]api.Guest, error) {
	var out api.Items[api.Guest]
	err := c.do(ctx, http.MethodGet, "/api/v1/guests", nil, nil, &out)
	return out.Items, err
}

// CreateLog creates a log emitter with PUT /log and returns its id.
func (c *Client) CreateLog(ctx context.Context, req api.LogRequest) (string, error) {
	var out api.Created
	err := c.do(ctx, http.MethodPut, "/log", nil, req, &out)
	return out.ID, err
}

// Fib runs a Fibonacci route: "current", "next", "previous" or "reset".
func (c *Client) Fib(ctx context.Context, name string) (api.FibState, error) {
	var out api.FibState
	err := c.do(ctx, http.MethodPost, "/fib/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// Track publishes data (any JSON value) to user's tracker stream and
// returns its seq.
func (c *Client) Track(ctx context.Context, user string, data any) (uint64, error) {
	var out api.Seq
	err := c.do(ctx, http.MethodPost, "/track/"+url.PathEscape(user), nil, data, &out)
	return out.Seq, err
}
