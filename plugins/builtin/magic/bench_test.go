package magic

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkMakeEvents is the per-tick cost at 100,000 events/s (1000
// events per 10ms tick).
func BenchmarkMakeEvents(b *testing.B) {
	b.ReportAllocs()
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	for b.Loop() {
		_ = makeEvents(rng, 1000, now)
	}
}
