package api

import (
	"encoding/json"
	"fmt"
)

// ErrorBody is the body of every error answer, on every route family
// and for the errors the HTTP server answers before any route runs:
//
//	{"error":{"code":"…","message":"…","fields":[{"field":"…","message":"…"}]}}
//
// The queue API's Zaqar routes also set Title and Description, the
// shape Zaqar clients read, beside Error.
type ErrorBody struct {
	Error       Error  `json:"error"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

// Error says what went wrong: Code for programs, Message for people, and
// Fields naming the request fields at fault (validation errors).
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

// FieldError is one invalid request field; Field is a dotted path
// ("retention.max_age") or "(body)" for the body as a whole.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// NewError returns the body of an error with code and message.
func NewError(code, message string, fields ...FieldError) ErrorBody {
	return ErrorBody{Error: Error{Code: code, Message: message, Fields: fields}}
}

// Encode returns the JSON encoding of b: the one encoder of the error
// body. It cannot fail (strings only).
func (b ErrorBody) Encode() []byte {
	out, err := json.Marshal(b)
	if err != nil { // unreachable: every field is a string
		return []byte(`{"error":{"code":"internal","message":"encode error"}}`)
	}
	return out
}

// DecodeError reads an error body; ok is false when raw is not one
// (a proxy's HTML page, an empty body).
func DecodeError(raw []byte) (b ErrorBody, ok bool) {
	var probe struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.Error == nil {
		return ErrorBody{}, false
	}
	_ = json.Unmarshal(raw, &b) // same bytes: title and description too
	return b, true
}

// String is "code: message".
func (e Error) String() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// RetryAfter is the Retry-After header (in seconds) of every 503 answer:
// each is a passing state (storage full until space is freed, a plugin
// restarting, a node away), so clients retry after it.
const RetryAfter = "1"
