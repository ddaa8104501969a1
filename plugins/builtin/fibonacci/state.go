package fibonacci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
)

// stateJSON is the checkpoint:
// {"position":N,"current":"<F(N)>","previous":"<F(N-1)>"}.
type stateJSON struct {
	Position uint64 `json:"position"`
	Current  string `json:"current"`
	Previous string `json:"previous"`
}

// decoded is the plugin's working state: F(Position) and F(Position-1)
// as decimal limbs (see decimal), with their printed forms, which the
// result and the checkpoint both need.
type decoded struct {
	Position  uint64
	cur, prev decimal
	curS      string
	prevS     string
}

func startDecoded() decoded {
	return decoded{cur: decimal{}, prev: decimal{1}, curS: "0", prevS: "1"}
}

// step moves one position and prints only the one new number: the other
// was already printed.
func (d *decoded) step(forward bool) {
	if forward {
		next := add(d.cur, d.prev)
		d.prev, d.cur = d.cur, next
		d.prevS, d.curS = d.curS, next.String()
		d.Position++
		return
	}
	if d.Position == 0 {
		return
	}
	older := sub(d.cur, d.prev)
	d.cur, d.prev = d.prev, older
	d.curS, d.prevS = d.prevS, older.String()
	d.Position--
}

// encode writes the checkpoint as Encode does.
func (d *decoded) encode() []byte {
	b := make([]byte, 0, len(d.curS)+len(d.prevS)+64)
	b = strconv.AppendUint(append(b, `{"position":`...), d.Position, 10)
	b = append(append(append(b, `,"current":"`...), d.curS...), `","previous":"`...)
	return append(append(b, d.prevS...), `"}`...)
}

// decodeCheckpoint parses a checkpoint (nil or empty is position 0) into
// decimal limbs, in linear time. It checks that the numbers are decimal
// integers and that position 0 holds F(0) and F(-1), and trusts the host
// for the rest (it stores what encode wrote).
func decodeCheckpoint(cp []byte) (decoded, error) {
	if len(cp) == 0 {
		return startDecoded(), nil
	}
	var j stateJSON
	if err := json.Unmarshal(cp, &j); err != nil {
		return decoded{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	cur, ok1 := parseDecimal(j.Current)
	prev, ok2 := parseDecimal(j.Previous)
	if !ok1 || !ok2 {
		return decoded{}, fmt.Errorf("%w: current and previous must be non-negative decimal integers", ErrBadCheckpoint)
	}
	if j.Position == 0 && (len(cur) != 0 || len(prev) != 1 || prev[0] != 1) {
		return decoded{}, fmt.Errorf("%w: position 0 must hold current 0, previous 1", ErrBadCheckpoint)
	}
	return decoded{Position: j.Position, cur: cur, prev: prev, curS: cur.String(), prevS: prev.String()}, nil
}

// lastStates remembers, per instance, the last checkpoint this process
// produced and its decoded state. The host passes that checkpoint back
// with the next command, so decoding two long decimals is skipped; any
// other checkpoint (a restart, a rolled-back commit) is parsed.
type lastStates struct {
	mu sync.Mutex
	m  map[string]lastState
}

type lastState struct {
	cp []byte
	st decoded
}

// maxRemembered bounds the map; past it, it starts over.
const maxRemembered = 1024

func (l *lastStates) decode(id string, cp []byte) (decoded, error) {
	l.mu.Lock()
	last, ok := l.m[id]
	l.mu.Unlock()
	if ok && bytes.Equal(last.cp, cp) {
		// The numbers are never changed in place (steps allocate new
		// ones), so sharing them is safe.
		return last.st, nil
	}
	return decodeCheckpoint(cp)
}

func (l *lastStates) remember(id string, cp []byte, st decoded) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxRemembered {
		l.m = map[string]lastState{}
	}
	l.m[id] = lastState{cp: cp, st: st}
}
