package jsonwalk

import "testing"

func TestWalkMembersAndElements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		obj  bool
		want []string // key=value, or value for arrays
		done bool
	}{
		{`{"a":1,"b":"x","c":{"d":[1,2]}}`, true, []string{`a=1`, `b="x"`, `c={"d":[1,2]}`}, true},
		{` [ 1 , "two" , null ] `, false, []string{`1`, `"two"`, `null`}, true},
		{`{}`, true, nil, true},
		{`[]`, false, nil, true},
		{`{"a":1,}`, true, []string{`a=1`}, false},
		{`{"a" 1}`, true, nil, false},
		{`"str"`, false, nil, false},
	}
	for _, tt := range tests {
		w := Walk([]byte(tt.in))
		var got []string
		for w.Next() {
			if w.IsObject() {
				got = append(got, string(w.Key)+"="+string(w.Val))
			} else {
				got = append(got, string(w.Val))
			}
		}
		if w.Done() != tt.done || (tt.done && w.Err() != nil) || len(got) != len(tt.want) {
			t.Fatalf("%s: %q done %v (%v), want %q done %v", tt.in, got, w.Done(), w.Err(), tt.want, tt.done)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("%s: %q, want %q", tt.in, got, tt.want)
			}
		}
		if tt.done && w.IsObject() != tt.obj {
			t.Fatalf("%s: IsObject %v", tt.in, w.IsObject())
		}
	}
}

// Descending into a value and ascending from it resumes after it; an
// escaped key is flagged for the caller to leave to encoding/json.
func TestDescendAscendAndEscapes(t *testing.T) {
	t.Parallel()
	w := Object([]byte(`{"m":[{"id":"x"},{"id":"y"}],"k\u0041":2}`))
	var ids []string
	for w.NextKey() {
		if string(w.Key) != "m" {
			if !w.KeyEsc || !w.Skip() {
				t.Fatalf("key %q: escapes %v", w.Key, w.KeyEsc)
			}
			continue
		}
		if !w.ValueStartsWith('[') {
			t.Fatal("m is not seen as an array")
		}
		a := w.Descend()
		for a.NextKey() {
			o := a.Descend()
			for o.Next() {
				s, ok := AnyString(o.Val)
				if !ok {
					t.Fatalf("id %s", o.Val)
				}
				ids = append(ids, s)
			}
			if !a.Ascend(&o) {
				t.Fatal("ascend from an element")
			}
		}
		if !w.Ascend(&a) {
			t.Fatal("ascend from m")
		}
	}
	if !w.Done() || len(ids) != 2 || ids[0] != "x" || ids[1] != "y" {
		t.Fatalf("ids %q, done %v", ids, w.Done())
	}
	if arr := Object([]byte(`[1]`)); arr.Err() == nil || arr.Next() {
		t.Fatal("Object accepted an array")
	}
}

func TestScalars(t *testing.T) {
	t.Parallel()
	if s, ok := PlainString([]byte(`"a\"b"`)); ok {
		t.Fatalf("PlainString took an escape: %q", s)
	}
	if s, ok := AnyString([]byte(`"a\"b"`)); !ok || s != `a"b` {
		t.Fatalf("AnyString = %q, %v", s, ok)
	}
	if n, ok := PlainInt([]byte(`-42`)); !ok || n != -42 {
		t.Fatalf("PlainInt = %d, %v", n, ok)
	}
	for _, bad := range []string{`1e3`, `1.5`, `"1"`, `4-2`} {
		if _, ok := PlainInt([]byte(bad)); ok {
			t.Fatalf("PlainInt(%s) accepted", bad)
		}
	}
	if !FoldOnly([]byte("Action"), "action") || FoldOnly([]byte("action"), "action") {
		t.Fatal("FoldOnly")
	}
}
