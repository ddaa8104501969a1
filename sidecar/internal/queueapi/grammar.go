package queueapi

import (
	"encoding/binary"
	"encoding/json"

	"github.com/bytedance/sonic"
)

// grammarValid reports whether t is one JSON value. It is the check every
// frame passes before the walkers read it (they check structure, not
// grammar, and hand message bodies to the store as they are), so it must
// never accept what encoding/json refuses; refusing more is harmless, as
// such a frame goes to encoding/json, which decides.
//
// sonic's vectorized validator (already linked, through the HTTP server)
// does the scan: encoding/json's state machine, one call per byte, was
// the largest single cost of a busy queue connection. sonic does not
// check what is inside strings (escapes, control characters), so a frame
// holding a backslash or a control byte is left to encoding/json: the
// frames clients send at volume hold neither.
func grammarValid(t []byte) bool {
	if hasEscapeOrControl(t) {
		return json.Valid(t)
	}
	return sonic.Valid(t)
}

// hasEscapeOrControl reports whether b holds a '\\' or a byte < 0x20,
// eight bytes at a time.
func hasEscapeOrControl(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		ctl := (x - 0x20*ones) &^ x & highs // a byte < 0x20
		y := x ^ '\\'*ones                  // a backslash byte becomes 0
		bs := (y - ones) &^ y & highs
		if ctl|bs != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c == '\\' {
			return true
		}
	}
	return false
}
