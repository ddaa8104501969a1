package filter

import (
	"errors"
	"testing"
)

// FuzzCompile feeds network-facing ?filter= texts to the compiler: every
// text either compiles to a filter whose evaluation never panics, or is
// refused with an *Error at a position inside the text's lines.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`type == "line"`, `data.level == "error" && seq > 10`, `"a" in data.tags`,
		`data.xs.all(x, x > 0)`, "type ==\n", `has(data.a.b)`, `data.msg.matches("^(a+)+$")`,
		`[1,2,3].map(x, x * 2).size() > 2`, `((((((((seq))))))))`, `time > timestamp("x")`, "\x00", `"\u`,
	} {
		f.Add(s)
	}
	c, err := NewCache(16)
	if err != nil {
		f.Fatal(err)
	}
	e := ev(7, "line", `{"level":"error","tags":["a"],"xs":[1,2],"msg":"aaaa","a":{"b":1}}`)
	f.Fuzz(func(t *testing.T, text string) {
		flt, err := c.Get(text)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Get(%q): %v is not a filter.Error", text, err)
			}
			if fe.Line < 1 || fe.Column < 1 {
				t.Fatalf("Get(%q): position %d:%d", text, fe.Line, fe.Column)
			}
			return
		}
		flt.Match(e) // must not panic; any verdict is fine
	})
}
