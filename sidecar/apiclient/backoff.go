package apiclient

import (
	"math/rand/v2"
	"time"
)

// backoff is exponential backoff with full jitter: the n-th wait (from 0)
// is uniform in [0, min(max, base·2ⁿ)]. Full jitter spreads the
// reconnects of many clients after a server restart instead of lining
// them up.
type backoff struct {
	base, max time.Duration
	// rnd returns a uniform int64 in [0, n); rand.Int64N unless a test
	// pins it.
	rnd func(n int64) int64
}

// delay returns the wait before reconnect attempt n (0-based).
func (b backoff) delay(n int) time.Duration {
	base, max := b.base, b.max
	if base <= 0 {
		base = time.Millisecond
	}
	if max < base {
		max = base
	}
	ceil := max
	if n < 62 {
		if d := base << n; d > 0 && d>>n == base && d < max {
			ceil = d
		}
	}
	rnd := b.rnd
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(ceil) + 1))
}
