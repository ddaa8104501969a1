package queueapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

// who is the caller of one operation.
type who struct {
	tenant   string
	clientID string
}

// decodeFunc fills an operation's parameter struct (from a frame body, or
// from a REST path, query and body).
type decodeFunc func(v any) error

// op is one operation, named by its WebSocket action.
type op struct {
	scope  string
	client bool // needs a Client-ID
	run    func(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error)
}

var ops map[string]op

func init() {
	ops = map[string]op{
		"queue_create":        {ScopeWrite, false, opQueueCreate},
		"queue_list":          {ScopeRead, false, opQueueList},
		"queue_get":           {ScopeRead, false, opQueueGet},
		"queue_update":        {ScopeWrite, false, opQueueUpdate},
		"queue_delete":        {ScopeWrite, false, opQueueDelete},
		"queue_get_stats":     {ScopeRead, false, opQueueStats},
		"message_post":        {ScopeWrite, true, opMessagePost},
		"message_list":        {ScopeRead, true, opMessageList},
		"message_get":         {ScopeRead, true, opMessageGet},
		"message_get_many":    {ScopeRead, true, opMessageGetMany},
		"message_delete":      {ScopeWrite, true, opMessageDelete},
		"message_delete_many": {ScopeWrite, true, opMessageDeleteMany},
		"claim_create":        {ScopeWrite, true, opClaimCreate},
		"claim_get":           {ScopeRead, true, opClaimGet},
		"claim_update":        {ScopeWrite, true, opClaimUpdate},
		"claim_delete":        {ScopeWrite, true, opClaimDelete},
	}
}

// identify resolves the tenant of a request: with auth on, the token's
// tenant, which X-Project-Id (when given) must equal; with auth off,
// X-Project-Id itself.
func (api *API) identify(p *auth.Principal, projectID, clientID string, o op) (who, error) {
	w := who{tenant: projectID, clientID: clientID}
	if api.a.Enabled() {
		if p == nil {
			return w, httperr.New(http.StatusUnauthorized, "unauthenticated", "a bearer token is required")
		}
		if !p.HasScope(o.scope) {
			return w, httperr.New(http.StatusForbidden, "insufficient_scope", "the token lacks scope %q", o.scope)
		}
		switch {
		case projectID == "":
			w.tenant = p.Tenant
		case projectID != p.Tenant:
			return w, httperr.New(http.StatusForbidden, "forbidden", "X-Project-Id does not match the token's tenant")
		}
	} else if projectID == "" {
		return w, httperr.New(http.StatusBadRequest, "missing_project_id", "the X-Project-Id header is required")
	}
	if err := queue.CheckTenant(w.tenant); err != nil {
		return w, err
	}
	if o.client {
		if err := queue.CheckClientID(clientID); err != nil {
			return w, httperr.New(http.StatusBadRequest, "invalid_client_id", "%s", err)
		}
	}
	return w, nil
}

func (w who) key(name string) queue.Key { return queue.Key{Tenant: w.tenant, Queue: name} }

// secs turns an optional count of seconds into a duration (0: default).
func secs(field string, v *int64) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if *v <= 0 || *v > 1<<31 {
		return 0, secsErr(field, v)
	}
	return time.Duration(*v) * time.Second, nil
}

// secsErr is secs' error for a value v it refused.
func secsErr(field string, v *int64) error {
	return queue.Invalid(field, "must be a positive number of seconds, got %d", *v)
}

type queueParams struct {
	QueueName string          `json:"queue_name"`
	Metadata  json.RawMessage `json:"metadata"`
}

func opQueueCreate(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p queueParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	created, err := api.q.CreateQueue(ctx, w.key(p.QueueName), p.Metadata)
	if err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, nil, nil
	}
	return http.StatusNoContent, nil, nil
}

type queueListParams struct {
	Marker   string `json:"marker"`
	Limit    int    `json:"limit"`
	Detailed bool   `json:"detailed"`
}

type queueOut struct {
	Name     string          `json:"name"`
	Href     string          `json:"href"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

func opQueueList(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p queueListParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	if p.Limit == 0 {
		p.Limit = min(10, api.q.Limits().MaxQueuesPerPage)
	}
	qs, err := api.q.ListQueues(ctx, w.tenant, p.Marker, p.Limit)
	if err != nil {
		return 0, nil, err
	}
	out := make([]queueOut, len(qs))
	marker := p.Marker
	for i, q := range qs {
		out[i] = queueOut{Name: q.Name, Href: queueHref(q.Name)}
		if p.Detailed {
			out[i].Metadata = q.Metadata
		}
		marker = q.Name
	}
	v := url.Values{"marker": {marker}, "limit": {strconv.Itoa(p.Limit)}}
	if p.Detailed {
		v.Set("detailed", "true")
	}
	return http.StatusOK, map[string]any{
		"queues": out, "links": []link{{Rel: "next", Href: "/v2/queues?" + v.Encode()}},
	}, nil
}

func opQueueGet(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p queueParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	meta, err := api.q.Metadata(ctx, w.key(p.QueueName))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, meta, nil
}

func opQueueUpdate(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p queueParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	if len(p.Metadata) == 0 {
		return 0, nil, queue.Invalid("metadata", "is required")
	}
	if err := api.q.SetMetadata(ctx, w.key(p.QueueName), p.Metadata); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p.Metadata, nil
}

func opQueueDelete(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p queueParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, api.q.DeleteQueue(ctx, w.key(p.QueueName))
}

type msgStat struct {
	ID      string `json:"id"`
	Href    string `json:"href"`
	Age     int64  `json:"age"`
	Created string `json:"created"`
}

func opQueueStats(ctx context.Context, api *API, w who, dec decodeFunc) (int, any, error) {
	var p queueParams
	if err := dec(&p); err != nil {
		return 0, nil, err
	}
	st, err := api.q.Stats(ctx, w.key(p.QueueName))
	if err != nil {
		return 0, nil, err
	}
	now := api.q.Now()
	m := map[string]any{"free": st.Free, "claimed": st.Claimed, "total": st.Total}
	for name, s := range map[string]*queue.MessageStat{"oldest": st.Oldest, "newest": st.Newest} {
		if s != nil {
			m[name] = msgStat{ID: s.ID, Href: msgHref(p.QueueName, s.ID, ""), Age: age(now, s.Created),
				Created: s.Created.UTC().Format(time.RFC3339)}
		}
	}
	return http.StatusOK, map[string]any{"messages": m}, nil
}

func queueHref(q string) string { return "/v2/queues/" + q }

func msgHref(q, id, claim string) string {
	h := "/v2/queues/" + q + "/messages/" + id
	if claim != "" {
		h += "?claim_id=" + claim
	}
	return h
}

func age(now, t time.Time) int64 { return max(int64(now.Sub(t)/time.Second), 0) }
