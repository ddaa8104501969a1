package queueapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// grammarCases are near misses of JSON that encoding/json refuses (and a
// few it accepts): grammarValid must never accept one it refuses, or the
// walkers would store a message body no reader can decode.
var grammarCases = []string{
	`{"a":1}`, `[1,2]`, `"x"`, `1`, `null`, ` {"a" : [ true , false , null ] } `,
	`{"a":"\ud800"}`, `{"a":"\u00e9\n\t\"\\\/"}`, `1e5`, `-0.5E-3`, `{"a":{}}`,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`,
	`{"a":+1}`, `{"a":-}`, `{"a":1e}`, `{"a":NaN}`, `{"a":Infinity}`, `{"a":tru}`, `{"a":nul}`,
	`{"a":"\x"}`, `{"a":"\u00zz"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\t\"}",
	"{\"a\":\"\x1f\"}", `{"a":1}}`, `{"a":1} x`, `{"a":1}{}`, `{"a":[1}`, `{"a":"x}`, `{"a":1`,
	`{`, `}`, ``, ` `, `{"a":truex}`, `{"a":0x10}`, `{"a":1}` + "\x00", "\x00", `[1 2]`,
	`{"a":1 "b":2}`, `{,}`, `[,1]`, `{"a":--1}`, `{"a":"\U0041"}`, `{"a":-01}`, `{"a":1.5e+}`,
	strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
	strings.Repeat("[", 100) + strings.Repeat("]", 99),
}

func TestGrammarValidNeverAcceptsWhatEncodingJSONRefuses(t *testing.T) {
	t.Parallel()
	for _, s := range grammarCases {
		checkGrammar(t, []byte(s))
	}
	// The frames the server lives on must pass, or every one of them
	// would take the slow path.
	for _, s := range walkCases[:3] {
		if !grammarValid([]byte(s)) {
			t.Fatalf("%s refused", s)
		}
	}
}

// TestDecodeFrameRefusesBadGrammarInsideAWalkedFrame: a post whose message
// body is not JSON is refused with encoding/json's 400 wording, though
// the walker alone would have read it.
func TestDecodeFrameRefusesBadGrammarInsideAWalkedFrame(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`01`, `"\x"`, `[1,]`, `tru`, `{"a":NaN}`, "\"\x01\""} {
		data := `{"action":"message_post","body":{"queue_name":"q","messages":[{"body":` + body + `}]}}`
		_, err := decodeFrame([]byte(data))
		want := json.Unmarshal([]byte(data), new(frame))
		if err == nil || want == nil {
			t.Fatalf("%s: decodeFrame err %v, encoding/json err %v", data, err, want)
		}
		if !strings.HasPrefix(err.Error(), "malformed frame: ") {
			t.Fatalf("%s: %v", data, err)
		}
	}
}

func checkGrammar(t *testing.T, data []byte) {
	t.Helper()
	if grammarValid(data) && !json.Valid(data) {
		t.Fatalf("grammarValid accepted %q, which encoding/json refuses", data)
	}
}

func FuzzGrammarValid(f *testing.F) {
	for _, s := range grammarCases {
		f.Add([]byte(s))
	}
	for _, s := range walkCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkGrammar(t, data) })
}

func TestHasEscapeOrControl(t *testing.T) {
	t.Parallel()
	for n := 0; n < 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				want := c < 0x20 || c == '\\'
				if got := hasEscapeOrControl(b); got != want {
					t.Fatalf("%q: got %v", b, got)
				}
			}
		}
		if hasEscapeOrControl([]byte(strings.Repeat("\x7f\xff ]", n))) {
			t.Fatal("high bytes taken for control bytes")
		}
	}
}

// benchPostFrame is a post of 10 messages of ~100 bytes, as `sidestream
// bench queue --batch 10` sends.
func benchPostFrame() []byte {
	var b strings.Builder
	b.WriteString(`{"action":"message_post","headers":{"Request-ID":"12345","Client-ID":"bench-producer-1"},"body":{"queue_name":"bench","messages":[`)
	for i := range 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"ttl":300,"body":{"seq":123456,"t":1765100000000000000,"pad":"` + strings.Repeat("x", 60) + `"}}`)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// BenchmarkPostFrame is the server's parse of one post frame: the
// reader's decodeFrame, then the handler's walk of its parameters.
func BenchmarkPostFrame(b *testing.B) {
	data := benchPostFrame()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := decodeFrame(data)
		var p postParams
		if err != nil || !walkParams(f.Body, &p) || len(p.Messages) != 10 {
			b.Fatal(err)
		}
	}
}
