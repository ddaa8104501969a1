package httperr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cloudwego/hertz/pkg/protocol"

	"github.com/sidestream/sidestream/core/cluster"
	"github.com/sidestream/sidestream/core/emitter"
	"github.com/sidestream/sidestream/core/queue"
	"github.com/sidestream/sidestream/core/stream"
	"github.com/sidestream/sidestream/sidecar/api"
	"github.com/sidestream/sidestream/sidecar/internal/auth"
)

// Every error a handler can return, wrapped as the layers below wrap
// them, gets its status and code; nothing unknown leaks its text.
func TestForMapsWrappedErrors(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("handler: %w", fmt.Errorf("store: %w", err)) }
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"own answer", New(http.StatusTeapot, "teapot", "short and stout"), http.StatusTeapot, "teapot"},
		{"store unavailable (streams)", wrap(stream.ErrStoreUnavailable), http.StatusServiceUnavailable, "unavailable"},
		{"store unavailable (queues)", wrap(queue.ErrUnavailable), http.StatusServiceUnavailable, "unavailable"},
		{"queue closed", wrap(queue.ErrClosed), http.StatusServiceUnavailable, "unavailable"},
		{"stream closed", wrap(stream.ErrClosed), http.StatusServiceUnavailable, "closed"},
		{"queue missing", wrap(queue.ErrQueueNotFound), http.StatusNotFound, "queue_not_found"},
		{"claimed", wrap(queue.ErrClaimed), http.StatusForbidden, "claimed"},
		{"too large", wrap(queue.ErrTooLarge), http.StatusRequestEntityTooLarge, "too_large"},
		{"emitter missing", wrap(emitter.ErrNotFound), http.StatusNotFound, "not_found"},
		{"emitter exists", wrap(emitter.ErrExists), http.StatusConflict, "exists"},
		{"command failed", wrap(&emitter.CommandError{Message: "no"}), http.StatusBadRequest, "command_failed"},
		{"no token", wrap(auth.ErrUnauthenticated), http.StatusUnauthorized, "unauthenticated"},
		{"scope", wrap(auth.ErrForbidden), http.StatusForbidden, "insufficient_scope"},
		{"remote node", wrap(cluster.ErrRemote), http.StatusBadGateway, "remote_failed"},
		{"deadline", wrap(context.DeadlineExceeded), http.StatusGatewayTimeout, "timeout"},
		{"canceled", wrap(context.Canceled), http.StatusServiceUnavailable, "canceled"},
		{"unknown", errors.New("disk at /var/lib/x on fire"), http.StatusInternalServerError, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := For(tt.err)
			if e.Status != tt.status || e.Code != tt.code || e.Message == "" {
				t.Fatalf("For(%v) = %d %q %q, want %d %q", tt.err, e.Status, e.Code, e.Message, tt.status, tt.code)
			}
		})
	}
	if e := For(errors.New("disk at /var/lib/x on fire")); e.Message != "internal error" {
		t.Fatalf("a 500 tells %q", e.Message)
	}
}

// Validation errors of either domain name the fields at fault.
func TestForNamesInvalidFields(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		&queue.ValidationError{Field: "ttl", Message: "must be at least 60"},
		&emitter.ValidationError{Fields: []emitter.FieldError{{Field: "ttl", Message: "must be at least 60"}}},
	} {
		e := For(fmt.Errorf("post: %w", err))
		want := []api.FieldError{{Field: "ttl", Message: "must be at least 60"}}
		if e.Status != http.StatusBadRequest || e.Code != "invalid" || len(e.Fields) != 1 || e.Fields[0] != want[0] {
			t.Fatalf("For(%T) = %d %q %v", err, e.Status, e.Code, e.Fields)
		}
	}
}

// A client told to come back is told when; one told to authenticate is
// told how; a 405 lists what is allowed.
func TestSetHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e            *Error
		header, want string
	}{
		{For(queue.ErrUnavailable), "Retry-After", api.RetryAfter},
		{For(auth.ErrUnauthenticated), "WWW-Authenticate", `Bearer realm="sidestream"`},
		{&Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Allow: "GET, POST"}, "Allow", "GET, POST"},
		{For(queue.ErrClaimed), "Retry-After", ""},
	}
	for _, tt := range tests {
		var h protocol.ResponseHeader
		tt.e.SetHeaders(&h)
		if got := string(h.Peek(tt.header)); got != tt.want {
			t.Errorf("%d %s: %s = %q, want %q", tt.e.Status, tt.e.Code, tt.header, got, tt.want)
		}
	}
}
