package fibonacci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"sync"
)

// State is a position in the Fibonacci sequence with F(Position) and
// F(Position-1), enough to step either way with one big-integer operation.
type State struct {
	Position uint64
	Current  *big.Int
	Previous *big.Int
}

type stateJSON struct {
	Position uint64 `json:"position"`
	Current  string `json:"current"`
	Previous string `json:"previous"`
}

// Start is position 0: F(0) = 0, F(-1) = 1.
func Start() State {
	return State{Current: big.NewInt(0), Previous: big.NewInt(1)}
}

// StepForward advances one position.
func (s *State) StepForward() {
	next := new(big.Int).Add(s.Current, s.Previous)
	s.Previous, s.Current = s.Current, next
	s.Position++
}

// StepBack goes back one position; at position 0 it stays.
func (s *State) StepBack() {
	if s.Position == 0 {
		return
	}
	prev := new(big.Int).Sub(s.Current, s.Previous)
	s.Current, s.Previous = s.Previous, prev
	s.Position--
}

// Encode returns the checkpoint form of s.
func (s State) Encode() ([]byte, error) {
	b, err := json.Marshal(stateJSON{s.Position, s.Current.String(), s.Previous.String()})
	if err != nil {
		return nil, fmt.Errorf("fibonacci: encode state: %w", err)
	}
	return b, nil
}

// DecodeState parses a checkpoint; nil or empty is position 0. It checks
// that the numbers are decimal integers and that position 0 holds F(0) and
// F(-1), but trusts the host for the rest (it stores what Encode wrote).
func DecodeState(cp []byte) (State, error) {
	if len(cp) == 0 {
		return Start(), nil
	}
	var j stateJSON
	if err := json.Unmarshal(cp, &j); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	cur, ok1 := new(big.Int).SetString(j.Current, 10)
	prev, ok2 := new(big.Int).SetString(j.Previous, 10)
	if !ok1 || !ok2 || cur.Sign() < 0 || prev.Sign() < 0 {
		return State{}, fmt.Errorf("%w: current and previous must be non-negative decimal integers", ErrBadCheckpoint)
	}
	if j.Position == 0 && (cur.Sign() != 0 || prev.Cmp(big.NewInt(1)) != 0) {
		return State{}, fmt.Errorf("%w: position 0 must hold current 0, previous 1", ErrBadCheckpoint)
	}
	return State{Position: j.Position, Current: cur, Previous: prev}, nil
}

// decoded is a State with the decimal forms of its two numbers, which
// the result and the checkpoint both need.
type decoded struct {
	State
	cur, prev string
}

// step moves one position and converts only the one new number to
// decimal: the other was already known.
func (d *decoded) step(forward bool) {
	if forward {
		d.StepForward()
		d.prev, d.cur = d.cur, d.Current.String()
		return
	}
	if d.Position == 0 {
		return
	}
	d.StepBack()
	d.cur, d.prev = d.prev, d.Previous.String()
}

// encode writes the checkpoint as Encode does.
func (d *decoded) encode() []byte {
	b := make([]byte, 0, len(d.cur)+len(d.prev)+64)
	b = strconv.AppendUint(append(b, `{"position":`...), d.Position, 10)
	b = append(append(append(b, `,"current":"`...), d.cur...), `","previous":"`...)
	return append(append(b, d.prev...), `"}`...)
}

// lastStates remembers, per instance, the last checkpoint this process
// produced and its decoded state. The host passes that checkpoint back
// with the next command, so parsing two long decimals (quadratic in
// their length, most of a step's cost at high positions) is skipped; any
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
	st, err := DecodeState(cp)
	if err != nil {
		return decoded{}, err
	}
	return decoded{State: st, cur: st.Current.String(), prev: st.Previous.String()}, nil
}

func (l *lastStates) remember(id string, cp []byte, st decoded) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxRemembered {
		l.m = map[string]lastState{}
	}
	l.m[id] = lastState{cp: cp, st: st}
}
