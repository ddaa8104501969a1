package queueapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/jsonerr"
)

type fillFunc func(c *app.RequestContext, v any) error

func (api *API) routes(r route.IRoutes) {
	mw := api.a.Middleware(api.writeError) // nil-safe: passes everything when auth is off
	const q, m, cl = "/v2/queues/:queue", "/v2/queues/:queue/messages", "/v2/queues/:queue/claims"
	r.GET("/v2/queues", mw, api.rest("queue_list", false, fillQueueList))
	r.PUT(q, mw, api.rest("queue_create", false, fillQueueCreate))
	r.GET(q, mw, api.rest("queue_get", false, fillQueue))
	r.PATCH(q, mw, api.patchQueue)
	r.DELETE(q, mw, api.rest("queue_delete", false, fillQueue))
	r.GET(q+"/stats", mw, api.rest("queue_get_stats", false, fillQueue))
	r.POST(m, mw, api.rest("message_post", true, fillQueue))
	r.GET(m, mw, api.listOrGetMany)
	r.DELETE(m, mw, api.rest("message_delete_many", false, fillDeleteMany))
	r.GET(m+"/:id", mw, api.rest("message_get", false, fillMessage))
	r.DELETE(m+"/:id", mw, api.rest("message_delete", false, fillMessage))
	r.POST(cl, mw, api.rest("claim_create", true, fillClaim))
	r.GET(cl+"/:claim", mw, api.rest("claim_get", false, fillClaim))
	r.PATCH(cl+"/:claim", mw, api.rest("claim_update", true, fillClaim))
	r.DELETE(cl+"/:claim", mw, api.rest("claim_delete", false, fillClaim))
	r.GET("/v2/ws", api.serveWS)
}

// rest adapts an operation: identity from headers, parameters from the
// JSON body (when body is set) and then from the path and query.
func (api *API) rest(action string, body bool, fill fillFunc) app.HandlerFunc {
	o := ops[action]
	return func(ctx context.Context, c *app.RequestContext) {
		var p *auth.Principal
		if pr, ok := auth.FromContext(c); ok {
			p = &pr
		}
		w, err := api.identify(p, string(c.GetHeader("X-Project-Id")), string(c.GetHeader("Client-ID")), o)
		if err != nil {
			api.writeError(c, err)
			return
		}
		dec := func(v any) error {
			raw := c.Request.Body()
			if len(raw) > api.o.MaxBodyBytes {
				return fmt.Errorf("%w: body is over %d bytes", queue.ErrTooLarge, api.o.MaxBodyBytes)
			}
			if body && len(bytes.TrimSpace(raw)) > 0 {
				if err := decodeObject(raw, v); err != nil {
					return err
				}
			}
			return fill(c, v)
		}
		status, out, err := o.run(ctx, api, w, dec)
		if err != nil {
			api.writeError(c, err)
			return
		}
		setLocation(c, action, out)
		writeJSON(c, status, out)
	}
}

// decodeObject decodes a JSON object into v with a clear error.
func decodeObject(raw []byte, v any) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return httperr.New(http.StatusBadRequest, "malformed_json", "the body must be a JSON object")
	}
	if err := json.Unmarshal(t, v); err != nil {
		return decodeError(err)
	}
	return nil
}

// decodeError answers a decode error in plain words (jsonerr), naming
// the field, never a Go type.
func decodeError(err error) *httperr.Error {
	p := jsonerr.Describe(err)
	ae := httperr.New(http.StatusBadRequest, "malformed_json", "%s", p.Message)
	if p.Field != "" {
		ae.Fields = []api.FieldError{{Field: p.Field, Message: p.Detail}}
	}
	return ae
}

func writeJSON(c *app.RequestContext, status int, out any) {
	if out == nil {
		c.SetStatusCode(status)
		return
	}
	b, err := encode(out)
	if err != nil {
		ae := httperr.New(http.StatusInternalServerError, "internal", "encode response")
		c.Data(ae.Status, "application/json; charset=utf-8", errorBody(ae))
		c.Abort()
		return
	}
	c.Data(status, "application/json; charset=utf-8", b)
}

func setLocation(c *app.RequestContext, action string, out any) {
	switch action {
	case "queue_create":
		if c.Response.StatusCode() != http.StatusNoContent {
			c.Response.Header.Set("Location", queueHref(c.Param("queue")))
		}
	case "claim_create", "message_post":
		// The hot paths encode their output by hand; REST reads it back.
		e, ok := out.(encoded)
		var v struct {
			Href string   `json:"href"`
			IDs  []string `json:"message_ids"`
		}
		if !ok || json.Unmarshal(e, &v) != nil {
			return
		}
		if action == "claim_create" {
			c.Response.Header.Set("Location", v.Href)
			return
		}
		c.Response.Header.Set("Location", queueHref(c.Param("queue"))+"/messages?ids="+strings.Join(v.IDs, ","))
	}
}

func (api *API) listOrGetMany(ctx context.Context, c *app.RequestContext) {
	if len(c.QueryArgs().Peek("ids")) > 0 {
		api.rest("message_get_many", false, fillDeleteMany)(ctx, c)
		return
	}
	api.rest("message_list", false, fillMessageList)(ctx, c)
}

// patchQueue applies a Zaqar v2 JSON patch ([{"op","path":"/metadata/k","value"}]).
func (api *API) patchQueue(ctx context.Context, c *app.RequestContext) {
	o := ops["queue_update"]
	var p *auth.Principal
	if pr, ok := auth.FromContext(c); ok {
		p = &pr
	}
	w, err := api.identify(p, string(c.GetHeader("X-Project-Id")), string(c.GetHeader("Client-ID")), o)
	if err != nil {
		api.writeError(c, err)
		return
	}
	if !jsonPatchType(string(c.ContentType())) {
		api.writeError(c, httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"a queue update is a JSON patch: send Content-Type %s", jsonPatchTypes[0]))
		return
	}
	name := c.Param("queue")
	meta, err := api.patched(ctx, w.key(name), c.Request.Body())
	if err != nil {
		api.writeError(c, err)
		return
	}
	status, out, err := o.run(ctx, api, w, func(v any) error {
		qp := v.(*queueParams)
		qp.QueueName, qp.Metadata = name, meta
		return nil
	})
	if err != nil {
		api.writeError(c, err)
		return
	}
	writeJSON(c, status, out)
}

// jsonPatchTypes are the media types of a queue update: Zaqar's, and
// RFC 6902's.
var jsonPatchTypes = []string{"application/openstack-messaging-v2.0-json-patch", "application/json-patch+json"}

// jsonPatchType reports whether a Content-Type is a JSON patch (any
// parameters aside).
func jsonPatchType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && slices.Contains(jsonPatchTypes, mt)
}

func (api *API) patched(ctx context.Context, k queue.Key, body []byte) (json.RawMessage, error) {
	var patch []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &patch); err != nil {
		ae := decodeError(err)
		ae.Message = "the body must be a JSON patch array: " + ae.Message
		return nil, ae
	}
	if err := queue.CheckKey(k); err != nil {
		return nil, err
	}
	raw, err := api.q.Metadata(ctx, k)
	if err != nil {
		return nil, err
	}
	meta := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("stored metadata of %s: %w", k, err)
	}
	for i, op := range patch {
		key, ok := strings.CutPrefix(op.Path, "/metadata/")
		if !ok || key == "" {
			return nil, queue.Invalid(fmt.Sprintf("[%d].path", i), "must be /metadata/{key}")
		}
		switch op.Op {
		case "add", "replace":
			if len(op.Value) == 0 {
				return nil, queue.Invalid(fmt.Sprintf("[%d].value", i), "is required")
			}
			meta[key] = op.Value
		case "remove":
			delete(meta, key)
		default:
			return nil, queue.Invalid(fmt.Sprintf("[%d].op", i), "must be add, replace or remove")
		}
	}
	return json.Marshal(meta)
}

func fillQueue(c *app.RequestContext, v any) error {
	switch p := v.(type) {
	case *queueParams:
		p.QueueName = c.Param("queue")
	case *postParams:
		p.QueueName = c.Param("queue")
	}
	return nil
}

func fillQueueCreate(c *app.RequestContext, v any) error {
	p := v.(*queueParams)
	p.QueueName = c.Param("queue")
	if b := bytes.TrimSpace(c.Request.Body()); len(b) > 0 {
		p.Metadata = b
	}
	return nil
}

func fillQueueList(c *app.RequestContext, v any) error {
	p := v.(*queueListParams)
	p.Marker = c.Query("marker")
	var err error
	if p.Limit, err = queryInt(c, "limit"); err != nil {
		return err
	}
	p.Detailed, err = queryBool(c, "detailed")
	return err
}

func fillMessageList(c *app.RequestContext, v any) error {
	p := v.(*listParams)
	p.QueueName, p.Marker = c.Param("queue"), c.Query("marker")
	var err error
	if p.Limit, err = queryInt(c, "limit"); err != nil {
		return err
	}
	if p.Echo, err = queryBool(c, "echo"); err != nil {
		return err
	}
	p.IncludeClaimed, err = queryBool(c, "include_claimed")
	return err
}

func fillMessage(c *app.RequestContext, v any) error {
	p := v.(*idsParams)
	p.QueueName, p.MessageID, p.ClaimID = c.Param("queue"), c.Param("id"), c.Query("claim_id")
	return nil
}

func fillDeleteMany(c *app.RequestContext, v any) error {
	p := v.(*idsParams)
	p.QueueName = c.Param("queue")
	p.MessageIDs = splitList(c.Query("ids"))
	p.ClaimIDs = splitList(c.Query("claim_ids"))
	var err error
	p.Pop, err = queryInt(c, "pop")
	if err == nil && p.Pop == 0 && len(p.MessageIDs) == 0 {
		err = queue.Invalid("ids", "give ids or pop")
	}
	return err
}

func fillClaim(c *app.RequestContext, v any) error {
	p := v.(*claimParams)
	p.QueueName, p.ClaimID = c.Param("queue"), c.Param("claim")
	if s := c.Query("limit"); s != "" {
		n, err := queryInt(c, "limit")
		if err != nil {
			return err
		}
		p.Limit = n
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func queryInt(c *app.RequestContext, name string) (int, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, queue.Invalid(name, "must be a positive integer, got %q", s)
	}
	return n, nil
}

func queryBool(c *app.RequestContext, name string) (bool, error) {
	s := c.Query(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, queue.Invalid(name, "must be true or false, got %q", s)
	}
	return b, nil
}
