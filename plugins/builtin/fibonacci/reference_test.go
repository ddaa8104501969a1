package fibonacci

// The math/big form of the state: the reference the tests hold the
// plugin's decimal limbs to (the plugin itself uses decoded).

import (
	"encoding/json"
	"fmt"
	"math/big"
)

// State is a position in the Fibonacci sequence with F(Position) and
// F(Position-1), enough to step either way with one big-integer operation.
type State struct {
	Position uint64
	Current  *big.Int
	Previous *big.Int
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

// Encode returns the checkpoint form earlier builds wrote, numbers and
// all: the plugin still reads it.
func (s State) Encode() ([]byte, error) {
	b, err := json.Marshal(stateJSON{s.Position, s.Current.String(), s.Previous.String()})
	if err != nil {
		return nil, fmt.Errorf("fibonacci: encode state: %w", err)
	}
	return b, nil
}

// DecodeState parses a checkpoint; nil or empty is position 0. A position
// alone is stepped to from 0, one addition at a time (slow, but
// independent of the plugin's fast doubling). It checks that numbers are
// decimal integers and that position 0 holds F(0) and F(-1), but trusts
// the host for the rest (it stores what Encode wrote).
func DecodeState(cp []byte) (State, error) {
	if len(cp) == 0 {
		return Start(), nil
	}
	var j stateJSON
	if err := json.Unmarshal(cp, &j); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if j.Current == "" && j.Previous == "" {
		s := Start()
		for s.Position < j.Position {
			s.StepForward()
		}
		return s, nil
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
