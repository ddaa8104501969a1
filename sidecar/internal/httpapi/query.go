package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/thin"
)

func fieldError(code, field, msg string) *httperr.Error {
	return &httperr.Error{Status: http.StatusBadRequest, Code: code, Message: field + " " + msg,
		Fields: []api.FieldError{{Field: field, Message: msg}}}
}

// queryUint reads an optional unsigned integer query parameter.
func queryUint(c *app.RequestContext, name string) (v uint64, ok bool, err error) {
	q, ok := c.GetQuery(name)
	if !ok {
		return 0, false, nil
	}
	v, perr := strconv.ParseUint(q, 10, 64)
	if perr != nil {
		return 0, false, fieldError("invalid_query", name, "must be an unsigned integer")
	}
	return v, true, nil
}

// queryBool reads an optional flag query parameter: 1 or true, 0 or
// false; absent is false.
func queryBool(c *app.RequestContext, name string) (bool, error) {
	q, ok := c.GetQuery(name)
	if !ok {
		return false, nil
	}
	switch q {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fieldError("invalid_query", name, "must be 1, true, 0 or false")
}

// queryLimit reads ?limit= (1..maxPage, default defaultPage).
func queryLimit(c *app.RequestContext) (int, error) {
	v, ok, err := queryUint(c, "limit")
	if err != nil {
		return 0, err
	}
	if !ok {
		return defaultPage, nil
	}
	if v < 1 || v > maxPage {
		return 0, fieldError("invalid_query", "limit", fmt.Sprintf("must be between 1 and %d", maxPage))
	}
	return int(v), nil
}

// queryMaxRate reads ?max_rate= (events a second for one subscriber,
// 1..thin.MaxRate; 0 when absent: no cap).
// subscriberQuery is what a subscriber of any stream route may ask of
// its delivery: ?max_rate= and ?filter= (nil when absent).
func (s *Server) subscriberQuery(c *app.RequestContext) (maxRate uint64, flt *filter.Filter, err error) {
	if maxRate, err = queryMaxRate(c); err != nil {
		return 0, nil, err
	}
	if flt, err = s.queryFilter(c); err != nil {
		return 0, nil, err
	}
	return maxRate, flt, nil
}

func queryMaxRate(c *app.RequestContext) (uint64, error) {
	v, ok, err := queryUint(c, "max_rate")
	if err == nil && ok {
		err = thin.Check(v)
	}
	if err != nil {
		return 0, fieldError("invalid_query", "max_rate", thin.ErrRate.Error())
	}
	return v, nil
}

// resumePosition is where a stream response starts: the Last-Event-ID
// header, else ?last_event_id=, else ?after= (all: after that seq), else
// ?from=start (the oldest kept) or ?from=now; by default only new events.
func resumePosition(c *app.RequestContext) (stream.Position, error) {
	if h := c.Request.Header.Get("Last-Event-ID"); h != "" {
		seq, err := strconv.ParseUint(h, 10, 64)
		if err != nil {
			return stream.Position{}, fieldError("bad_last_event_id", "Last-Event-ID", "must be an event seq (unsigned integer)")
		}
		return stream.After(seq), nil
	}
	for _, name := range []string{"last_event_id", "after"} {
		seq, ok, err := queryUint(c, name)
		if err != nil {
			err.(*httperr.Error).Code = "bad_last_event_id"
			return stream.Position{}, err
		}
		if ok {
			return stream.After(seq), nil
		}
	}
	switch from, _ := c.GetQuery("from"); from {
	case "", "now":
		return stream.FromNow(), nil
	case "start":
		return stream.After(0), nil
	default:
		return stream.Position{}, fieldError("invalid_query", "from", `must be "start" or "now"`)
	}
}
