package sdk

import (
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// bufferPoolTiers are the buffer sizes (powers of two, 256 B to 1 MiB)
// gRPC takes its message buffers from, in every process that imports this
// package: the sidecar host and each plugin.
//
// gRPC's default pool has tiers of 256 B, 4, 16 and 32 KiB and 1 MiB, and
// clears a pooled buffer's whole capacity on every Get. A command batch's
// answer of 32 KiB to 1 MiB (a few fibonacci events of several KB each
// plus the checkpoint) therefore took a 1 MiB buffer and cleared all of it,
// once to read it and once to gather its frames: a tenth of the host's CPU
// in the fib benchmark. With a tier at every power of two a buffer is less
// than twice the message, so clearing it costs about as much as reading it.
var bufferPoolTiers = []uint8{8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}

func init() {
	pool, err := mem.NewBinaryTieredBufferPool(bufferPoolTiers...)
	if err != nil {
		panic("sdk: gRPC buffer pool: " + err.Error()) // constant tiers: a bug
	}
	// Init time is the only time it may be set (not thread-safe).
	experimental.SetDefaultBufferPool(pool)
}
