package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/event"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

// Page bounds of the history routes.
const (
	defaultPage = 100
	maxPage     = 1000
)

// fibCommands are the Fibonacci routes under /fib/, each a command of the
// shared emitter "fib".
var fibCommands = []string{"current", "next", "previous", "reset"}

func (s *Server) createLog(ctx context.Context, c *app.RequestContext) error {
	b, err := s.body(c)
	if err != nil {
		return err
	}
	req, err := decodeLogRequest(b, c.Query)
	if err != nil {
		return err
	}
	req.Tenant, _ = tenant(c)
	spec, err := s.d.Emitters.Create(ctx, req)
	if err != nil {
		return err
	}
	c.Response.Header.Set("Location", "/log/"+spec.ID)
	return writeJSON(c, http.StatusCreated, api.Created{ID: spec.ID})
}

// logPage answers GET /log/{id}?limit=&before= (api.LogPage): the newest events before
// the cursor, oldest first, and "prev", the cursor of the page before.
func (s *Server) logPage(ctx context.Context, c *app.RequestContext) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	before, _, err := queryUint(c, "before")
	if err != nil {
		return err
	}
	flt, err := s.queryFilter(c)
	if err != nil {
		return err
	}
	st, err := s.emitterStream(ctx, c, c.Param("id"))
	if err != nil {
		return err
	}
	var evs []*event.Event
	prev := uint64(0)
	if flt == nil {
		if evs, err = st.ReadBefore(ctx, before, limit); len(evs) > 0 {
			prev = evs[0].Seq
		}
	} else {
		evs, prev, err = readBeforeFiltered(ctx, st, before, limit, flt)
	}
	if err != nil {
		return err
	}
	buf := appendEvents([]byte(`{"events":`), evs)
	if prev > 1 {
		buf = append(buf, `,"prev":`...)
		buf = strconv.AppendUint(buf, prev, 10)
	}
	c.Data(http.StatusOK, jsonContentType, append(buf, '}'))
	return nil
}

// appendEvents appends a JSON array of the events' cached envelopes.
func appendEvents(buf []byte, evs []*event.Event) []byte {
	buf = append(buf, '[')
	for i, e := range evs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, e.JSON()...)
	}
	return append(buf, ']')
}

func (s *Server) fibIndex(_ context.Context, c *app.RequestContext) error {
	type endpoint struct {
		Path        string   `json:"path"`
		Methods     []string `json:"methods"`
		Description string   `json:"description"`
	}
	both := []string{"GET", "POST"}
	return writeJSON(c, http.StatusOK, map[string]any{
		"description": "Fibonacci sequence with durable state; values are decimal strings",
		"endpoints": []endpoint{
			{"/fib/current", both, "the current position and value"},
			{"/fib/next", both, "advance one position and return it"},
			{"/fib/previous", both, "go back one position (stays at 0)"},
			{"/fib/reset", both, "back to position 0"},
			{"/sse/fib", []string{"GET"}, "SSE stream of every change"},
		},
	})
}

// fib runs a command on the shared "fib" emitter and passes its result
// ({"position":N,"value":"…"}) through.
func (s *Server) fib(name string) handler {
	return func(ctx context.Context, c *app.RequestContext) error {
		return s.runCommand(ctx, c, "fib", name)
	}
}

func (s *Server) runCommand(ctx context.Context, c *app.RequestContext, id, name string) error {
	args, err := s.optionalJSON(c)
	if err != nil {
		return err
	}
	if _, authed := tenant(c); authed {
		if _, err := s.ownEmitter(ctx, c, id); err != nil {
			return err
		}
	}
	res, err := s.d.Emitters.Command(ctx, id, name, args)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		res = json.RawMessage("null")
	}
	c.Data(http.StatusOK, jsonContentType, res)
	return nil
}

// optionalJSON returns the body when it is one JSON value, nil when empty.
func (s *Server) optionalJSON(c *app.RequestContext) (json.RawMessage, error) {
	b, err := s.body(c)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	if json.Valid(b) {
		// Checked, not decoded: the value is passed on as it came, and
		// building Go values for it would only be thrown away.
		return json.RawMessage(b), nil
	}
	var v any
	if err := decodeStrict(b, &v); err != nil {
		return nil, err // says what is wrong, as every JSON body's 400
	}
	return json.RawMessage(b), nil
}

func (s *Server) trackPublish(ctx context.Context, c *app.RequestContext) error {
	data, err := s.optionalJSON(c)
	if err != nil {
		return err
	}
	q, hasQuery := c.GetQuery("data")
	if data == nil && !hasQuery {
		return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid", Message: "data is required (?data= or a JSON body)",
			Fields: []api.FieldError{{Field: "data", Message: "is required"}}}
	}
	user, err := trackUser(c, c.Param("user"))
	if err != nil {
		return err
	}
	var seq uint64
	if data != nil {
		seq, err = s.d.Tracker.Publish(ctx, user, data)
	} else {
		seq, err = s.d.Tracker.PublishString(ctx, user, q)
	}
	if err != nil {
		return err
	}
	c.Data(http.StatusAccepted, jsonContentType, appendSeq(nil, seq))
	return nil
}

// appendSeq appends api.Seq{Seq: seq} as JSON, without reflection: it
// answers every tracker publish.
func appendSeq(dst []byte, seq uint64) []byte {
	dst = append(dst, `{"seq":`...)
	return append(strconv.AppendUint(dst, seq, 10), '}')
}
