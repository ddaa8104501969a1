package streamhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ClientFrame is what a WebSocket client may send on a stream socket:
// {"resume": SEQ} restarts delivery after SEQ (0: from the oldest kept).
type ClientFrame struct {
	Resume *uint64 `json:"resume"`
}

// ErrBadFrame is returned for a client frame that is not a ClientFrame.
var ErrBadFrame = errors.New("bad client frame")

// ParseClientFrame decodes one client text frame strictly: one JSON object,
// known fields only, resume a non-negative integer.
func ParseClientFrame(b []byte) (ClientFrame, error) {
	var f ClientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return ClientFrame{}, fmt.Errorf("%w: %s", ErrBadFrame, describeJSONErr(err))
	}
	if dec.More() {
		return ClientFrame{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadFrame)
	}
	if f.Resume == nil {
		return ClientFrame{}, fmt.Errorf("%w: expected {\"resume\": seq}", ErrBadFrame)
	}
	return f, nil
}

func describeJSONErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type.String())
	}
	return err.Error()
}
