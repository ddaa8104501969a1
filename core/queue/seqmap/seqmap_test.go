package seqmap

import (
	"math/rand/v2"
	"testing"
)

// TestMapAgreesWithGoMap drives Map and a Go map with the same random
// operations (in-order posts and deletes, stragglers, keys far ahead and
// behind) and checks they agree after each.
func TestMapAgreesWithGoMap(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		var m Map[int]
		want := map[uint64]int{}
		next, old := uint64(1), uint64(1)
		for op := range 20000 {
			var k uint64
			switch r.IntN(10) {
			case 0:
				k = uint64(r.IntN(1 << 20)) // anywhere
			case 1, 2, 3, 4:
				k = next // the next post
				next++
			default:
				k = old + uint64(r.IntN(64)) // near the oldest
				if r.IntN(3) > 0 {
					m.Delete(k)
					delete(want, k)
					check(t, &m, want, k, op)
					continue
				}
			}
			m.Set(k, op)
			want[k] = op
			check(t, &m, want, k, op)
			if r.IntN(50) == 0 {
				old += uint64(r.IntN(32))
			}
		}
		got := map[uint64]int{}
		for k, v := range m.All() {
			if _, dup := got[k]; dup {
				t.Fatalf("All yields %d twice", k)
			}
			got[k] = v
		}
		if len(got) != len(want) || m.Len() != len(want) {
			t.Fatalf("seed %d: All %d keys, Len %d, want %d", seed, len(got), m.Len(), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("seed %d: All has %d=%d, want %d", seed, k, got[k], v)
			}
		}
	}
}

func check(t *testing.T, m *Map[int], want map[uint64]int, k uint64, op int) {
	t.Helper()
	for _, q := range []uint64{k, k - 1, k + 1, m.base, m.base + 1} {
		v, ok := m.Get(q)
		w, wok := want[q]
		if ok != wok || v != w || m.Has(q) != wok {
			t.Fatalf("op %d: Get(%d) = %d,%v, want %d,%v", op, q, v, ok, w, wok)
		}
	}
	if m.Len() != len(want) {
		t.Fatalf("op %d: Len %d, want %d", op, m.Len(), len(want))
	}
}

// TestMapEmptiesAndRebases: a drained map holds no window and starts a
// new one wherever the next key is.
func TestMapEmptiesAndRebases(t *testing.T) {
	t.Parallel()
	var m Map[string]
	for k := uint64(100); k < 200; k++ {
		m.Set(k, "x")
	}
	for k := uint64(100); k < 200; k++ {
		m.Delete(k)
	}
	if m.Len() != 0 || len(m.win) != 0 || len(m.far) != 0 {
		t.Fatalf("drained map keeps %d keys, window %d", m.Len(), len(m.win))
	}
	m.Set(1<<40, "y")
	if v, ok := m.Get(1 << 40); !ok || v != "y" || len(m.far) != 0 {
		t.Fatalf("after rebase: %q %v far %d", v, ok, len(m.far))
	}
}

// BenchmarkQueueChurn is the drivers' pattern: post a batch of 10, look
// each up, delete the batch 1000 seqs behind.
func BenchmarkQueueChurn(b *testing.B) {
	b.Run("seqmap", func(b *testing.B) {
		var m Map[[]byte]
		v := []byte("v")
		seq := uint64(1)
		for b.Loop() {
			for i := range uint64(10) {
				m.Set(seq+i, v)
			}
			for i := range uint64(10) {
				m.Get(seq + i)
				if seq > 1000 {
					m.Delete(seq - 1000 + i)
				}
			}
			seq += 10
		}
	})
	b.Run("gomap", func(b *testing.B) {
		m := map[uint64][]byte{}
		v := []byte("v")
		seq := uint64(1)
		for b.Loop() {
			for i := range uint64(10) {
				m[seq+i] = v
			}
			for i := range uint64(10) {
				_ = m[seq+i]
				if seq > 1000 {
					delete(m, seq-1000+i)
				}
			}
			seq += 10
		}
	})
}
