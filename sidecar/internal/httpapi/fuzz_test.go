package httpapi

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/sidestream/sidestream/sidecar/internal/httperr"
)

// Decoders never panic and answer every input with a request or a 4xx
// naming what is wrong; what they accept is valid JSON.
func FuzzDecodeLogRequest(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"source":"file","path":"/var/log/x"}`, `{"rate":1e309}`, `{"rate":"x"}`,
		`{"retention":{"max_age":"1h","max_events":-1}}`, `{"bogus":1}`, `[`, `{"guest":"vm-17"} x`, `null`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeLogRequest(b, func(string) string { return "" })
		if err != nil {
			checkClientError(t, b, err)
			return
		}
		if req.Kind != "log" || !json.Valid(req.Config) {
			t.Fatalf("%q: accepted as %+v", b, req)
		}
	})
}

func FuzzDecodeCreateRequest(f *testing.F) {
	for _, s := range []string{``, `{"kind":"log"}`, `{"kind":"magic","config":{"rate":5},"labels":{"a":"b"},"id":"x"}`,
		`{"kind":1}`, `{"kind":"log","labels":{"a":1}}`, `{"kind":"log","retention":{"persist":"yes"}}`, `{"kind":"log","config":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeCreateRequest(b)
		if err != nil {
			checkClientError(t, b, err)
			return
		}
		if req.Kind == "" || (req.Config != nil && !json.Valid(req.Config)) {
			t.Fatalf("%q: accepted as %+v", b, req)
		}
	})
}

func checkClientError(t *testing.T, b []byte, err error) {
	t.Helper()
	var ae *httperr.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code == "" || ae.Message == "" {
		t.Fatalf("%q: error %v is not a 400 httperr.Error", b, err)
	}
	if m := httperr.For(err); m.Status != 400 {
		t.Fatalf("%q: mapped to %d", b, m.Status)
	}
}
