package fibonacci

import (
	"strconv"
	"strings"
)

// decimal is a non-negative integer kept in base 10^18 limbs, least
// significant first, with no zero limb at the top (zero is empty). The
// plugin steps and prints numbers thousands of digits long on every
// command: with big.Int the addition is cheap but printing in decimal is
// not (113 µs at F(35,000), against 1 µs for the addition); here adding,
// subtracting, parsing and printing are all linear.
type decimal []uint64

const (
	limbDigits = 18
	limbBase   = 1_000_000_000_000_000_000
)

// parseDecimal reads a string of ASCII digits (leading zeros allowed).
func parseDecimal(s string) (decimal, bool) {
	if s == "" {
		return nil, false
	}
	d := make(decimal, 0, len(s)/limbDigits+1)
	for end := len(s); end > 0; end -= limbDigits {
		var limb uint64
		for _, c := range []byte(s[max(0, end-limbDigits):end]) {
			if c < '0' || c > '9' {
				return nil, false
			}
			limb = limb*10 + uint64(c-'0')
		}
		d = append(d, limb)
	}
	return d.trim(), true
}

func (d decimal) trim() decimal {
	for len(d) > 0 && d[len(d)-1] == 0 {
		d = d[:len(d)-1]
	}
	return d
}

// String prints d in decimal. It is most of a step's CPU at deep
// positions (F(40,000) has 8,360 digits): every limb below the top one is
// printed at its fixed width two digits at a time, into the one buffer
// the string is made of.
func (d decimal) String() string {
	if len(d) == 0 {
		return "0"
	}
	var top [20]byte
	head := strconv.AppendUint(top[:0], d[len(d)-1], 10)
	var sb strings.Builder
	sb.Grow(len(head) + (len(d)-1)*limbDigits)
	sb.Write(head)
	var limb [limbDigits]byte
	for i := len(d) - 2; i >= 0; i-- {
		putLimb(&limb, d[i])
		sb.Write(limb[:])
	}
	return sb.String()
}

// digitPairs is "00" to "99".
const digitPairs = "0001020304050607080910111213141516171819" +
	"2021222324252627282930313233343536373839" +
	"4041424344454647484950515253545556575859" +
	"6061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// putLimb prints x (below limbBase) as exactly limbDigits digits.
func putLimb(dst *[limbDigits]byte, x uint64) {
	for i := limbDigits - 2; i >= 0; i -= 2 {
		q := x / 100
		r := (x - q*100) * 2
		dst[i], dst[i+1] = digitPairs[r], digitPairs[r+1]
		x = q
	}
}

// add returns a+b in a new slice.
func add(a, b decimal) decimal {
	if len(a) < len(b) {
		a, b = b, a
	}
	out := make(decimal, len(a), len(a)+1)
	var carry uint64
	for i := range a {
		s := a[i] + carry
		if i < len(b) {
			s += b[i]
		}
		carry = 0
		if s >= limbBase {
			s -= limbBase
			carry = 1
		}
		out[i] = s
	}
	if carry != 0 {
		out = append(out, carry)
	}
	return out
}

// sub returns a-b in a new slice; a must not be less than b.
func sub(a, b decimal) decimal {
	out := make(decimal, len(a))
	var borrow uint64
	for i := range a {
		x := a[i]
		y := borrow
		if i < len(b) {
			y += b[i]
		}
		borrow = 0
		if x < y {
			x += limbBase
			borrow = 1
		}
		out[i] = x - y
	}
	return out.trim()
}
