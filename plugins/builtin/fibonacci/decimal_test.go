package fibonacci

import (
	"math/big"
	"strings"
	"testing"
)

// FuzzDecimal holds the limb arithmetic to math/big: parse and print
// round-trip, add, and subtract (larger minus smaller).
func FuzzDecimal(f *testing.F) {
	f.Add("0", "0")
	f.Add("999999999999999999", "1")
	f.Add("1000000000000000000", "1")
	f.Add(strings.Repeat("9", 40), strings.Repeat("9", 19))
	f.Add("000123", "7")
	f.Fuzz(func(t *testing.T, x, y string) {
		a, okA := parseDecimal(x)
		b, okB := parseDecimal(y)
		ba, okBA := new(big.Int).SetString(x, 10)
		bb, okBB := new(big.Int).SetString(y, 10)
		digitsOnly := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
		if okA != digitsOnly(x) || okB != digitsOnly(y) {
			t.Fatalf("parse %q %q: ok %v %v", x, y, okA, okB)
		}
		if !okA || !okB || !okBA || !okBB {
			return
		}
		if a.String() != ba.String() || b.String() != bb.String() {
			t.Fatalf("print %q %q: %s %s", x, y, a, b)
		}
		if got, want := add(a, b).String(), new(big.Int).Add(ba, bb).String(); got != want {
			t.Fatalf("%s + %s = %s, want %s", x, y, got, want)
		}
		if ba.Cmp(bb) < 0 {
			a, b, ba, bb = b, a, bb, ba
		}
		if got, want := sub(a, b).String(), new(big.Int).Sub(ba, bb).String(); got != want {
			t.Fatalf("%s - %s = %s, want %s", ba, bb, got, want)
		}
	})
}

// Stepping the plugin's state forward to 10,000 and back to 0 matches
// math/big at every position.
func TestDecodedStepsMatchBig(t *testing.T) {
	t.Parallel()
	d := startDecoded()
	ref := Start()
	for range 10000 {
		d.step(true)
		ref.StepForward()
		if d.Position%997 == 0 && d.curS != ref.Current.String() {
			t.Fatalf("F(%d) = %s…, want %s…", d.Position, d.curS[:20], ref.Current.String()[:20])
		}
	}
	if d.curS != ref.Current.String() || d.prevS != ref.Previous.String() {
		t.Fatalf("F(10000) differs from math/big")
	}
	for d.Position > 0 {
		d.step(false)
		ref.StepBack()
	}
	d.step(false) // stays at 0
	if d.Position != 0 || d.curS != "0" || d.prevS != "1" || len(d.cur) != 0 || len(d.prev) != 1 {
		t.Fatalf("back at 0: %+v", d)
	}
}
