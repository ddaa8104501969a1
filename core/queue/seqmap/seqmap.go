// Package seqmap is a map from message seqs to values for keys that
// arrive and leave roughly in order, as a queue's seqs do: the queue
// drivers' per-message tables (journaled posts and deletes, claim
// owners, pins).
//
// A Go map of such keys scatters them over its groups, so every access
// under load is a cache miss, and the delete of each old key leaves
// tombstones behind: those tables were a tenth of the server's CPU at
// 100k messages/s. Map keeps the keys of a sliding window in a slice
// indexed by seq - base, and the few keys outside it (far behind or far
// ahead) in a Go map.
package seqmap

import "iter"

type slot[V any] struct {
	v  V
	ok bool
}

// Map maps uint64 keys to V. The zero Map is empty and ready to use; it
// is not safe for concurrent use.
type Map[V any] struct {
	base  uint64    // key of win[0]
	win   []slot[V] // keys base..base+len(win)-1; win[0] is present unless empty
	arr   []slot[V] // the array win is the tail of (win = arr[len(arr)-len(win):])
	inWin int       // present slots in win
	far   map[uint64]V
}

// minSpan is how far ahead of its live keys the window may reach.
const minSpan = 1024

// Len is the number of keys.
func (m *Map[V]) Len() int { return m.inWin + len(m.far) }

// Get returns k's value and whether k is present.
func (m *Map[V]) Get(k uint64) (V, bool) {
	if i := k - m.base; k >= m.base && i < uint64(len(m.win)) && m.win[i].ok {
		return m.win[i].v, true
	}
	if m.far != nil {
		v, ok := m.far[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// Has reports whether k is present.
func (m *Map[V]) Has(k uint64) bool {
	_, ok := m.Get(k)
	return ok
}

// Set maps k to v.
func (m *Map[V]) Set(k uint64, v V) {
	if m.inWin == 0 {
		m.base, m.arr, m.win = k, m.arr[:0], m.arr[:0]
	}
	i := k - m.base
	switch {
	case k < m.base || i >= uint64(len(m.win))+uint64(max(minSpan, 4*m.inWin)):
		if m.far == nil {
			m.far = map[uint64]V{}
		}
		m.far[k] = v
		return
	case i >= uint64(len(m.win)):
		m.grow(int(i) + 1)
	}
	if len(m.far) > 0 {
		delete(m.far, k) // a key Set far ahead, now in the window
	}
	s := &m.win[i]
	if !s.ok {
		m.inWin++
	}
	s.v, s.ok = v, true
}

// Delete removes k.
func (m *Map[V]) Delete(k uint64) {
	if i := k - m.base; k >= m.base && i < uint64(len(m.win)) && m.win[i].ok {
		m.win[i] = slot[V]{}
		m.inWin--
		if i == 0 {
			m.trim()
		}
		return
	}
	if len(m.far) > 0 {
		delete(m.far, k)
	}
}

// grow extends the window to n slots. Once the room behind the window
// is as large as the window, the window moves back to the front of its
// array instead: a queue's window slides through one array.
func (m *Map[V]) grow(n int) {
	w := len(m.win)
	if len(m.arr)+n-w > cap(m.arr) && len(m.arr)-w >= w {
		copy(m.arr, m.win)
		clear(m.arr[w:])
		m.arr = m.arr[:w]
	}
	m.arr = append(m.arr, make([]slot[V], n-w)...)
	m.win = m.arr[len(m.arr)-n:]
}

// trim drops the absent keys at the front of the window.
func (m *Map[V]) trim() {
	j := 0
	for j < len(m.win) && !m.win[j].ok {
		j++
	}
	m.win = m.win[j:]
	m.base += uint64(j)
	if len(m.win) == 0 {
		m.arr, m.win = m.arr[:0], m.arr[:0]
	}
}

// All yields every key and value: the window's in key order, then the
// others in no order.
func (m *Map[V]) All() iter.Seq2[uint64, V] {
	return func(yield func(uint64, V) bool) {
		for i := range m.win {
			if m.win[i].ok && !yield(m.base+uint64(i), m.win[i].v) {
				return
			}
		}
		for k, v := range m.far {
			if !yield(k, v) {
				return
			}
		}
	}
}
