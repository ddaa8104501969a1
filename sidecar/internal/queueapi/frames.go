package queueapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sidestream/sidestream/sidecar/internal/httperr"
	"github.com/sidestream/sidestream/sidecar/internal/jsonerr"
	"github.com/sidestream/sidestream/sidecar/internal/jsonwalk"
)

// frame is one client request over the WebSocket.
//
// The strings walkFrame and walkParams take from a frame share its bytes
// (jsonwalk.SharedString): the reader hands each frame a slice of its
// own, and nothing writes to it after. Whatever keeps such a string
// beyond the request (the queue service's config cache) keeps a copy, or
// it would hold the whole frame.
type frame struct {
	Action  string                     `json:"action"`
	Headers map[string]json.RawMessage `json:"headers"` // as encoding/json reads them
	Body    json.RawMessage            `json:"body"`
	raw     []byte                     // the frame as received (valid JSON)
	// walked are the headers as walkFrame reads them, instead of Headers:
	// a map per frame cost an allocation, and one per header name.
	walked  [maxWalkedHeaders]headerPair
	nWalked int
}

// headerPair is one walked header: its name and its string value (JSON,
// quotes included).
type headerPair struct{ name, val []byte }

// maxWalkedHeaders is the most headers walkFrame reads; a frame with
// more goes to encoding/json.
const maxWalkedHeaders = 4

var errBadFrame = errors.New("malformed frame")

// maxActionLen bounds the action name echoed in errors.
const maxActionLen = 64

// decodeFrame parses a text frame: a JSON object with a non-empty string
// action, optional headers whose values are strings, and an optional body
// that is an object (or null).
func decodeFrame(data []byte) (frame, error) {
	var f frame
	t := bytes.TrimSpace(data)
	if len(t) == 0 || t[0] != '{' {
		return f, fmt.Errorf("%w: a frame is a JSON object {\"action\",\"headers\",\"body\"}", errBadFrame)
	}
	// grammarValid is the one full grammar check; walkFrame then reads the
	// usual frame without a second scan, and encoding/json takes the rest
	// (and words the error of a frame that is not JSON).
	if !grammarValid(t) || !walkFrame(t, &f) {
		f = frame{}
		if err := json.Unmarshal(t, &f); err != nil {
			return f, fmt.Errorf("%w: %s", errBadFrame, jsonerr.Describe(err).Message)
		}
	}
	if f.Action == "" {
		return f, fmt.Errorf("%w: action is required", errBadFrame)
	}
	if len(f.Action) > maxActionLen {
		return f, fmt.Errorf("%w: action is longer than %d characters", errBadFrame, maxActionLen)
	}
	if b := bytes.TrimSpace(f.Body); len(b) > 0 && b[0] != '{' && string(b) != "null" {
		return f, fmt.Errorf("%w: body must be a JSON object", errBadFrame)
	}
	for name, v := range f.Headers {
		if len(v) == 0 || v[0] != '"' {
			return f, fmt.Errorf("%w: header %q must be a string", errBadFrame, name)
		}
	}
	f.raw = t
	return f, nil
}

// header returns the string value of a header, matched case-insensitively.
func (f *frame) header(name string) string {
	for _, h := range f.walked[:f.nWalked] {
		if strings.EqualFold(string(h.name), name) {
			s, _ := jsonwalk.SharedString(h.val) // walkHeaders checked it
			return s
		}
	}
	for k, v := range f.Headers {
		if strings.EqualFold(k, name) {
			if s, ok := jsonwalk.PlainString(v); ok {
				return s
			}
			var s string
			_ = json.Unmarshal(v, &s) // decodeFrame checked it is a string
			return s
		}
	}
	return ""
}

// reply encodes {"request":…,"headers":{"status":N},"body":…}. The
// request is echoed byte for byte (null when it was not JSON).
func reply(req []byte, status int, body any) []byte {
	b, err := encode(body)
	if err != nil {
		status, b = 500, errorBody(httperr.New(500, "internal", "encode response"))
	}
	if body == nil {
		b = []byte("{}")
	}
	if req == nil {
		req = []byte("null")
	}
	out := outBuf(len(req) + len(b) + 48)
	out = append(out, `{"request":`...)
	out = append(out, req...)
	out = append(out, `,"headers":{"status":`...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, `},"body":`...)
	out = append(out, b...)
	return append(out, '}')
}

// errorReply answers req with err in the API's error shape.
func errorReply(req []byte, err error) []byte {
	ae := httperr.For(err)
	return reply(req, ae.Status, errorBody(ae))
}

// encoded is a JSON value built by hand, written as is instead of being
// marshalled and re-validated: the server's hot replies (from ids, names
// and message bodies validated when posted). It must be valid JSON.
type encoded []byte

func encode(v any) ([]byte, error) {
	if e, ok := v.(encoded); ok {
		return e, nil
	}
	return json.Marshal(v)
}
