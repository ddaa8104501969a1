// Package jsonwalk walks JSON objects and arrays member by member
// without decoding them, for the queue API's hot WebSocket frames, which
// the server (sidecar/internal/queueapi) and the queue client
// (sidecar/queueclient) both read.
package jsonwalk

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// The hot frames (posts and deletes on the server, deliveries and replies
// in the load client) are walked by hand instead of through
// encoding/json, which scans each value two or three times and decodes
// by reflection. The Walker checks structure, not grammar: the server
// runs it only on frames json.Valid accepted, and the client only on
// frames its own server built. Anything it does not expect makes the
// caller fall back to encoding/json, so both paths agree.

var errWalk = errors.New("jsonwalk: unexpected JSON")

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] (a
// quote) and whether it holds escapes. It looks for the closing quote
// with bytes.IndexByte (vectorized) rather than byte by byte: ids and
// hrefs are most of a delivery's bytes.
func skipString(b []byte, i int) (int, bool, error) {
	esc := false
	for j := i + 1; j <= len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			break
		}
		q += j
		bs := bytes.IndexByte(b[j:q], '\\')
		if bs < 0 {
			return q + 1, esc, nil
		}
		esc = true
		j += bs + 2 // past the backslash and the byte it escapes
	}
	return 0, false, errWalk
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errWalk
	}
	switch b[i] {
	case '"':
		j, _, err := skipString(b, i)
		return j, err
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				k, _, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = k - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errWalk
	}
	j := i
	for j < len(b) && !endsLiteral(b[j]) {
		j++
	}
	if j == i {
		return 0, errWalk
	}
	return j, nil
}

func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// Walker steps through the members of an object or the elements of an
// array: for w.Next() { w.Key, w.Val }; then check w.Done().
type Walker struct {
	b        []byte
	i        int // at the opening bracket, then at the ',' or closing bracket after the last value
	obj      bool
	started  bool
	Key      []byte // raw, without quotes (objects only)
	KeyEsc   bool   // key holds escapes or invalid UTF-8: not plain
	Val      []byte // the value's bytes (after next or skip)
	vstart   int    // where the value nextKey stopped at starts
	pending  bool   // nextKey stopped at a value not yet passed
	err      error
	finished bool
}

// Walk starts a Walker on the object or array v (after whitespace).
func Walk(v []byte) Walker {
	i := skipWS(v, 0)
	w := Walker{b: v, i: i}
	switch {
	case i < len(v) && v[i] == '{':
		w.obj = true
	case i < len(v) && v[i] == '[':
	default:
		w.err = errWalk
	}
	return w
}

// Object is Walk for a value that must be an object.
func Object(v []byte) Walker {
	w := Walk(v)
	if !w.obj {
		w.err = errWalk
	}
	return w
}

// Next steps to the next member or element and passes its value (w.Val).
func (w *Walker) Next() bool { return w.NextKey() && w.Skip() }

// IsObject reports whether the walk is of an object (not an array).
func (w *Walker) IsObject() bool { return w.obj }

// Err is the walk's error: the JSON was not shaped as the walk expected.
func (w *Walker) Err() error { return w.err }

// ValueStartsWith reports whether the value NextKey stopped at starts
// with c ('{', '[', 'n' for null…), before the caller skips or descends.
func (w *Walker) ValueStartsWith(c byte) bool { return w.vstart < len(w.b) && w.b[w.vstart] == c }

// NextKey steps to the next member or element like next, but stops at
// the start of its value (w.vstart): the caller then calls skip, or
// descend into the value and ascend from it. Descending scans a nested
// value once; next scans it again for every level it is nested in.
func (w *Walker) NextKey() bool {
	if w.pending { // the caller neither skipped nor descended
		return w.fail()
	}
	if w.err != nil || w.finished {
		return false
	}
	b := w.b
	if w.started && b[w.i] != ',' {
		return w.end(w.i)
	}
	i := skipWS(b, w.i+1) // after '{', '[' or ','
	if !w.started {
		w.started = true
		if i < len(b) && (b[i] == '}' || b[i] == ']') {
			return w.end(i)
		}
	}
	if w.obj {
		if i >= len(b) || b[i] != '"' {
			return w.fail()
		}
		k, esc, err := skipString(b, i)
		if err != nil {
			return w.fail()
		}
		w.Key = b[i+1 : k-1]
		w.KeyEsc = esc || !plainUTF8(w.Key)
		if i = skipWS(b, k); i >= len(b) || b[i] != ':' {
			return w.fail()
		}
		i = skipWS(b, i+1)
	}
	w.vstart, w.pending, w.Val = i, true, nil
	return true
}

// Skip passes the value NextKey stopped at and sets w.Val to it.
func (w *Walker) Skip() bool {
	e, err := skipValue(w.b, w.vstart)
	if err != nil {
		return w.fail()
	}
	w.Val = w.b[w.vstart:e]
	return w.after(e)
}

// Descend walks the value NextKey stopped at (an object or array);
// Ascend(&sub) resumes after it once sub is done.
func (w *Walker) Descend() Walker { return Walk(w.b[w.vstart:]) }

func (w *Walker) Ascend(sub *Walker) bool {
	if !sub.Done() {
		return w.fail()
	}
	return w.after(w.vstart + sub.i + 1)
}

// after moves past the value that ends at b[e] to the separator.
func (w *Walker) after(e int) bool {
	w.pending = false
	if w.i = skipWS(w.b, e); w.i >= len(w.b) || (w.b[w.i] != ',' && w.b[w.i] != '}' && w.b[w.i] != ']') {
		return w.fail()
	}
	return true
}

// end closes the walk at b[i], which must close what walk opened.
func (w *Walker) end(i int) bool {
	if (w.obj && w.b[i] != '}') || (!w.obj && w.b[i] != ']') {
		return w.fail()
	}
	w.finished, w.i = true, i
	return false
}

func (w *Walker) fail() bool {
	w.err = errWalk
	return false
}

// Done reports whether the walk reached its closing bracket cleanly
// (after `for w.Next() {…}` ran to the end).
func (w *Walker) Done() bool { return w.err == nil && w.finished }

// FoldOnly reports whether key matches name only case-insensitively,
// which encoding/json accepts and the walkers leave to it.
func FoldOnly(key []byte, name string) bool {
	return string(key) != name && strings.EqualFold(string(key), name)
}

// PlainString returns the string value v when it has no escapes.
func PlainString(v []byte) (string, bool) {
	s, ok := plainBytes(v)
	if !ok {
		return "", false
	}
	return string(s), true
}

// SharedString is PlainString without the copy: the string shares v's
// bytes, so v must never be written again while the string is in use.
// The server reads each frame into a slice of its own that nothing
// writes after, and takes the ids, names and headers of its hot frames
// this way: a copy of each was a third of its allocations.
func SharedString(v []byte) (string, bool) {
	s, ok := plainBytes(v)
	if !ok || len(s) == 0 {
		return "", ok
	}
	return unsafe.String(&s[0], len(s)), true
}

// plainBytes returns the contents of the string value v when it has no
// escapes and is valid UTF-8.
func plainBytes(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v[1:len(v)-1], '\\') >= 0 {
		return nil, false
	}
	s := v[1 : len(v)-1]
	return s, plainUTF8(s)
}

// plainUTF8 reports whether s is valid UTF-8 (encoding/json turns
// invalid bytes into U+FFFD: the walkers leave that to it).
func plainUTF8(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return utf8.Valid(s)
		}
	}
	return true
}

// AnyString decodes the string value v, escapes included.
func AnyString(v []byte) (string, bool) {
	if s, ok := PlainString(v); ok {
		return s, true
	}
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// PlainInt returns the integer value v (decimal digits, optional minus).
func PlainInt(v []byte) (int64, bool) {
	for i, c := range v {
		if (c < '0' || c > '9') && (c != '-' || i > 0) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}
