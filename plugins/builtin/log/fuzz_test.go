package logplugin

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeCheckpoint(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `{"dev":1,"ino":2,"offset":3}`, `{"line":7}`,
		`{"dev":18446744073709551615,"ino":0,"offset":9223372036854775807}`,
		`{"dev":-1,"ino":2,"offset":3}`, `{"offset":1e3}`, `{"line":1} {}`, `[`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, ok, err := decodeFileCheckpoint(b); err != nil {
			if !errors.Is(err, ErrBadCheckpoint) || ok {
				t.Fatalf("error %v (ok=%v) is not ErrBadCheckpoint", err, ok)
			}
		} else if ok {
			if c.Offset < 0 {
				t.Fatalf("accepted negative offset from %q", b)
			}
			again, ok2, err := decodeFileCheckpoint(c.encode())
			if err != nil || !ok2 || again != c {
				t.Fatalf("round trip of %q: %+v -> %+v %v", b, c, again, err)
			}
		}
		if c, ok, err := decodeLineCheckpoint(b); err == nil && ok {
			again, ok2, err := decodeLineCheckpoint(c.encode())
			if err != nil || !ok2 || again != c {
				t.Fatalf("round trip of %q: %+v -> %+v %v", b, c, again, err)
			}
		} else if err != nil && !errors.Is(err, ErrBadCheckpoint) {
			t.Fatalf("error %v is not ErrBadCheckpoint", err)
		}
	})
}

// FuzzAppendJSONString checks the hand-written encoder against
// encoding/json: always valid JSON, and the same text for valid UTF-8.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\n\n\r\t\x01", "é\u2028\u2029", "\xff\xfe", "<&>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		enc := appendJSONString(nil, b)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("invalid JSON %q for %q: %v", enc, b, err)
		}
		if utf8.Valid(b) && got != string(b) {
			t.Fatalf("decoded %q, want %q", got, b)
		}
	})
}
