package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/jsonerr"
)

// body returns the request body, or a 413 beyond MaxBodyBytes.
func (s *Server) body(c *app.RequestContext) ([]byte, error) {
	b := c.Request.Body()
	if int64(len(b)) > s.o.MaxBodyBytes {
		return nil, &httperr.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("request body exceeds %d bytes", s.o.MaxBodyBytes)}
	}
	return b, nil
}

// decodeStrict decodes one JSON value into dst: unknown fields, wrong
// types, malformed JSON and trailing data are 400s naming what is wrong.
func decodeStrict(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("malformed_json", "unexpected data after the JSON value")
	}
	return nil
}

// jsonError answers a decode error in plain words (jsonerr): the field
// and what it must be, never a Go type.
func jsonError(err error) error {
	p := jsonerr.Describe(err)
	switch p.Kind {
	case jsonerr.KindType:
		field := p.Field
		if field == "" {
			field = "(body)"
		}
		return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_type",
			Message: p.Message, Fields: []api.FieldError{{Field: field, Message: p.Detail}}}
	case jsonerr.KindUnknownField:
		return &httperr.Error{Status: http.StatusBadRequest, Code: "unknown_field",
			Message: p.Message, Fields: []api.FieldError{{Field: p.Field, Message: p.Detail}}}
	}
	return badRequest("malformed_json", "%s", p.Message)
}

// toRetention applies r over the default policy.
func toRetention(r *api.RetentionRequest) (*emitter.Retention, error) {
	if r == nil {
		return nil, nil
	}
	out := emitter.DefaultRetention
	if r.Persist != nil {
		out.Persist = *r.Persist
	}
	if r.MaxEvents != nil {
		out.MaxEvents = *r.MaxEvents
	}
	if r.MaxAge != "" {
		d, err := time.ParseDuration(r.MaxAge)
		if err != nil || d < 0 {
			return nil, &httperr.Error{Status: http.StatusBadRequest, Code: "invalid",
				Message: "retention.max_age must be a duration like \"24h\"",
				Fields:  []api.FieldError{{Field: "retention.max_age", Message: "must be a duration like \"24h\""}}}
		}
		out.MaxAge = emitter.Duration(d)
	}
	return &out, nil
}

// decodeLogRequest turns a PUT /log body (possibly empty) into a create
// request for a log emitter; query reads the request's ?guest= and ?id=,
// which a script may give instead of a body (curl -X PUT '…/log?guest=vm-17').
// A query that contradicts the body is refused, not silently preferred.
func decodeLogRequest(b []byte, query func(string) string) (emitter.CreateRequest, error) {
	req := emitter.CreateRequest{Kind: "log"}
	var lr api.LogRequest
	if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeStrict(b, &lr); err != nil {
			return req, err
		}
	}
	for _, q := range []struct {
		name string
		dst  *string
	}{{"id", &lr.ID}, {"guest", &lr.Guest}} {
		v := query(q.name)
		if v != "" && *q.dst != "" && v != *q.dst {
			return req, fieldError("invalid_query", q.name, "differs from the body's "+q.name)
		}
		if v != "" {
			*q.dst = v
		}
	}
	req.ID = lr.ID
	if lr.Source == "" {
		lr.Source = "synthetic"
	}
	cfg := map[string]any{"source": lr.Source}
	if lr.Rate != nil {
		cfg["rate"] = *lr.Rate
	} else if lr.Source == "synthetic" {
		cfg["rate"] = 10
	}
	if lr.Path != "" {
		cfg["path"] = lr.Path
	}
	if lr.Guest != "" {
		if lr.Source == "synthetic" {
			cfg["guest"] = lr.Guest
		}
		req.Labels = map[string]string{"guest": lr.Guest}
	}
	req.Config, _ = json.Marshal(cfg) // a map of strings and numbers always encodes
	ret, err := toRetention(lr.Retention)
	if err != nil {
		return req, err
	}
	req.Retention = ret
	return req, nil
}

func decodeCreateRequest(b []byte) (emitter.CreateRequest, error) {
	var cr api.CreateEmitter
	if len(bytes.TrimSpace(b)) == 0 {
		return emitter.CreateRequest{}, badRequest("malformed_json", "a JSON body {\"kind\": …} is required")
	}
	if err := decodeStrict(b, &cr); err != nil {
		return emitter.CreateRequest{}, err
	}
	if cr.Kind == "" {
		return emitter.CreateRequest{}, &httperr.Error{Status: http.StatusBadRequest, Code: "invalid",
			Message: "kind is required", Fields: []api.FieldError{{Field: "kind", Message: "is required"}}}
	}
	ret, err := toRetention(cr.Retention)
	if err != nil {
		return emitter.CreateRequest{}, err
	}
	return emitter.CreateRequest{ID: cr.ID, Kind: cr.Kind, Config: cr.Config, Labels: cr.Labels, Retention: ret, Node: cr.Node}, nil
}
