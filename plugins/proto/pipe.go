package pluginpb

// PipeWindow is the HTTP/2 flow-control window of the host–plugin
// connection, both ways, and PipeBuffer its read and write buffers; the
// host dials and the SDK serves with them. A fixed window turns off
// gRPC's bandwidth estimation, which answered data frames with a window
// update and a ping (and the peer with its ack): more writes, reads and
// wake-ups per call on a pipe whose bandwidth is the machine's memory.
// The window covers the largest answers (fibonacci batches of tens of
// KB at deep positions) without an update mid-message. Measured in
// BENCHMARKS.md (fib, "The plugin pipe's window").
const (
	PipeWindow = 16 << 20
	PipeBuffer = 256 << 10
)
