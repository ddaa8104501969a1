// Package httperr is the one place an error becomes an HTTP answer: its
// status, its code for programs, its message for people and the headers
// that go with them. The REST API, the queue API and the replies on
// their WebSockets all answer through it, so one error always gets one
// answer whichever route met it.
package httperr

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudwego/hertz/pkg/protocol"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/filter"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/core/tracker"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
	"github.com/sidestream/sidestream/sidecar/internal/crosssite"
)

// Error is an error with its HTTP answer. Handlers return one for the
// request problems they find themselves; For maps every other error.
type Error struct {
	Status  int
	Code    string
	Message string
	Fields  []api.FieldError
	// Allow is the Allow header of a 405.
	Allow string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an answer with a formatted message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Body is the answer's JSON: api.ErrorBody, the one error shape.
func (e *Error) Body() api.ErrorBody { return api.NewError(e.Code, e.Message, e.Fields...) }

// SetHeaders sets the headers the answer's status calls for.
func (e *Error) SetHeaders(h *protocol.ResponseHeader) {
	if e.Allow != "" {
		h.Set("Allow", e.Allow)
	}
	switch e.Status {
	case http.StatusServiceUnavailable:
		// Every 503 is a state that passes (a full disk freed, a plugin
		// restarted, a node back): say when to try again.
		h.Set("Retry-After", api.RetryAfter)
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="sidestream"`)
	}
}

// For maps err to its answer; an error it does not know is a 500 whose
// message tells nothing of the internals.
func For(err error) *Error {
	if e := forRequest(err); e != nil {
		return e
	}
	if e := forDomain(err); e != nil {
		return e
	}
	if e := forQueue(err); e != nil {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "timed out"}
	case errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusServiceUnavailable, Code: "canceled", Message: "request canceled"}
	default:
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
}

// forRequest maps the errors that say the request itself is at fault or
// not allowed.
func forRequest(err error) *Error {
	var (
		e  *Error
		fe *filter.Error
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_filter", Message: fe.Error(),
			Fields: []api.FieldError{{Field: "filter", Message: fe.Error()}}}
	case errors.Is(err, auth.ErrUnauthenticated):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: err.Error()}
	case errors.Is(err, crosssite.ErrHost):
		return &Error{Status: http.StatusForbidden, Code: "forbidden_host", Message: err.Error()}
	case errors.Is(err, crosssite.ErrOrigin):
		return &Error{Status: http.StatusForbidden, Code: "forbidden_origin", Message: err.Error()}
	case errors.Is(err, auth.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Message: err.Error()}
	}
	return nil
}

// forDomain maps the errors of emitters, streams, the tracker and the
// cluster.
func forDomain(err error) *Error {
	var (
		ve *emitter.ValidationError
		ce *emitter.CommandError
	)
	switch {
	case errors.As(err, &ve):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: ve.Error(), Fields: fieldsOut(ve.Fields)}
	case errors.As(err, &ce):
		code := ce.Code
		if code == "" {
			code = "command_failed"
		}
		return &Error{Status: http.StatusBadRequest, Code: code, Message: ce.Message}
	case errors.Is(err, emitter.ErrUnknownCommand):
		return &Error{Status: http.StatusNotFound, Code: "unknown_command", Message: err.Error()}
	case errors.Is(err, emitter.ErrNotFound), errors.Is(err, stream.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, emitter.ErrExists):
		return &Error{Status: http.StatusConflict, Code: "exists", Message: err.Error()}
	case errors.Is(err, emitter.ErrUnknownKind):
		return &Error{Status: http.StatusBadRequest, Code: "unknown_kind", Message: err.Error()}
	case errors.Is(err, tracker.ErrInvalidUser):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_user", Message: tracker.ErrInvalidUser.Error()}
	case errors.Is(err, tracker.ErrInvalidData):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_data", Message: tracker.ErrInvalidData.Error()}
	case errors.Is(err, emitter.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: err.Error()}
	case errors.Is(err, stream.ErrStoreUnavailable):
		return unavailableStorage()
	case errors.Is(err, stream.ErrClosed):
		return &Error{Status: http.StatusServiceUnavailable, Code: "closed", Message: "stream closed"}
	case errors.Is(err, cluster.ErrRemote):
		return &Error{Status: http.StatusBadGateway, Code: "remote_failed", Message: err.Error()}
	}
	return nil
}

// forQueue maps the queue service's errors.
func forQueue(err error) *Error {
	var ve *queue.ValidationError
	switch {
	case errors.As(err, &ve):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: ve.Error(),
			Fields: []api.FieldError{{Field: ve.Field, Message: ve.Message}}}
	case errors.Is(err, queue.ErrInvalid):
		return New(http.StatusBadRequest, "invalid", "%s", err)
	case errors.Is(err, queue.ErrTooLarge):
		return New(http.StatusRequestEntityTooLarge, "too_large", "%s", err)
	case errors.Is(err, queue.ErrQueueNotFound):
		return New(http.StatusNotFound, "queue_not_found", "%s", err)
	case errors.Is(err, queue.ErrMessageNotFound):
		return New(http.StatusNotFound, "message_not_found", "%s", err)
	case errors.Is(err, queue.ErrClaimNotFound):
		return New(http.StatusNotFound, "claim_not_found", "%s", err)
	case errors.Is(err, queue.ErrClaimed):
		return New(http.StatusForbidden, "claimed", "%s", err)
	case errors.Is(err, queue.ErrNotClaimedBy):
		return New(http.StatusForbidden, "not_claimed_by", "%s", err)
	case errors.Is(err, queue.ErrUnavailable):
		return unavailableStorage()
	case errors.Is(err, queue.ErrClosed):
		return New(http.StatusServiceUnavailable, "unavailable", "shutting down")
	}
	return nil
}

// unavailableStorage says the store failed in a way that passes (a full
// disk, a failed sync being recovered) without its internals.
func unavailableStorage() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "storage temporarily unavailable; retry later"}
}

// fieldsOut maps the emitter domain's field errors to the API's.
func fieldsOut(fs []emitter.FieldError) []api.FieldError {
	out := make([]api.FieldError, len(fs))
	for i, f := range fs {
		out[i] = api.FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}
