package sdk

import (
	"testing"

	"google.golang.org/grpc/mem"
)

// A command batch's answer of tens of KB must not take (and clear) a
// 1 MiB buffer, as gRPC's default tiers gave it.
func TestGRPCBufferPoolFitsMessages(t *testing.T) {
	t.Parallel()
	pool := mem.DefaultBufferPool()
	for _, size := range []int{300, 5_000, 40_000, 90_000, 600_000} {
		buf := pool.Get(size)
		if len(*buf) != size {
			t.Errorf("Get(%d): len %d", size, len(*buf))
		}
		if c := cap(*buf); c >= 2*size {
			t.Errorf("Get(%d): a buffer of %d bytes, want less than twice the message", size, c)
		}
		pool.Put(buf)
	}
}
