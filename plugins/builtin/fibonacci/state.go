package fibonacci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync"
)

// stateJSON is the checkpoint, {"position":N}: the position decides both
// numbers, so the checkpoint stays a few bytes at any position. Earlier
// builds also wrote "current" (F(N)) and "previous" (F(N-1)) in decimal,
// two numbers of ~0.21·N digits that crossed the plugin pipe twice and
// the synced journal once on every command; such a checkpoint is still
// read, and the numbers in it are used as they are.
type stateJSON struct {
	Position uint64 `json:"position"`
	Current  string `json:"current,omitempty"`
	Previous string `json:"previous,omitempty"`
}

// MaxPosition bounds the sequence. A checkpoint holds only the position,
// so the numbers are computed again from it after a restart, in time
// that grows with the position; and past this one a single answer (the
// result and its event, ~0.21·N digits each) no longer fits in the
// host's 64 MiB message.
const MaxPosition = 100_000_000

// decoded is the plugin's working state: F(Position) and F(Position-1)
// as decimal limbs (see decimal), with their printed forms, which the
// answers need (a step back answers with the one printed before).
type decoded struct {
	Position  uint64
	cur, prev decimal
	curS      string
	prevS     string
}

func startDecoded() decoded {
	return decoded{cur: decimal{}, prev: decimal{1}, curS: "0", prevS: "1"}
}

// errAtMaxPosition answers a next at MaxPosition.
var errAtMaxPosition = errors.New("fibonacci: at the last position")

// step moves one position and prints only the one new number: the other
// was already printed.
func (d *decoded) step(forward bool) error {
	if forward {
		if d.Position >= MaxPosition {
			return errAtMaxPosition
		}
		next := add(d.cur, d.prev)
		d.prev, d.cur = d.cur, next
		d.prevS, d.curS = d.curS, next.String()
		d.Position++
		return nil
	}
	if d.Position == 0 {
		return nil
	}
	older := sub(d.cur, d.prev)
	d.cur, d.prev = d.prev, older
	d.curS, d.prevS = d.prevS, older.String()
	d.Position--
	return nil
}

// encode writes the checkpoint: {"position":N}.
func (d *decoded) encode() []byte {
	b := make([]byte, 0, 36)
	b = strconv.AppendUint(append(b, `{"position":`...), d.Position, 10)
	return append(b, '}')
}

// decodeCheckpoint parses a checkpoint (nil or empty is position 0). A
// position alone is computed (see atPosition); an earlier build's
// numbers are parsed into decimal limbs, in linear time, checking that
// they are decimal integers and that position 0 holds F(0) and F(-1), and
// trusting the host for the rest (it stores what the plugin wrote).
func decodeCheckpoint(cp []byte) (decoded, error) {
	if len(cp) == 0 {
		return startDecoded(), nil
	}
	var j stateJSON
	if err := json.Unmarshal(cp, &j); err != nil {
		return decoded{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if j.Position > MaxPosition {
		return decoded{}, fmt.Errorf("%w: position %d is beyond the last, %d", ErrBadCheckpoint, j.Position, MaxPosition)
	}
	if j.Current == "" && j.Previous == "" {
		return atPosition(j.Position), nil
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

// atPosition computes F(n) and F(n-1) by fast doubling with math/big, in
// O(log n) multiplications (F(1,000,000): about 70 ms; see
// BenchmarkAtPosition), then prints them once and takes the decimal
// limbs from the print. It runs after a restart or a rolled-back commit,
// not per command: the plugin keeps its last state (lastStates).
func atPosition(n uint64) decoded {
	fn, fn1 := fibPair(n)
	prev := new(big.Int).Sub(fn1, fn) // F(n-1) = F(n+1) - F(n); F(-1) = 1
	curS, prevS := fn.Text(10), prev.Text(10)
	cur, _ := parseDecimal(curS)
	prv, _ := parseDecimal(prevS)
	return decoded{Position: n, cur: cur, prev: prv, curS: curS, prevS: prevS}
}

// fibPair returns F(n) and F(n+1):
// F(2k) = F(k)·(2F(k+1) − F(k)), F(2k+1) = F(k)² + F(k+1)².
func fibPair(n uint64) (*big.Int, *big.Int) {
	a, b := big.NewInt(0), big.NewInt(1) // F(0), F(1)
	t := new(big.Int)
	for bit := 63; bit >= 0; bit-- {
		// (a, b) = (F(k), F(k+1)) -> (F(2k), F(2k+1))
		t.Lsh(b, 1).Sub(t, a)
		c := new(big.Int).Mul(a, t)
		d := new(big.Int).Mul(a, a)
		d.Add(d, t.Mul(b, b))
		a, b = c, d
		if n>>bit&1 == 1 {
			a, b = b, a.Add(a, b) // (F(2k+1), F(2k+2))
		}
	}
	return a, b
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
