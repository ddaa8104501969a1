// Package wire is the one place where sidestream's wire formats are
// written and read: Server-Sent Events frames (encoded with
// hertz-contrib/sse, once per event, decoded for the clients), WebSocket
// connections for clients (hertz-contrib/websocket) and the batched frames
// the servers and clients write in one syscall. The JSON envelope of an
// event is core's (event.AppendJSON, event.AppendJSONString), and the
// queue frames' walker is sidecar/internal/jsonwalk.
//
// Where a library does the work, it is used; what is written by hand here
// is what a benchmark showed the library could not do at the measured
// speed (BENCHMARKS.md, "wire formats"): writing many WebSocket frames in
// one syscall, an SSE parser that reads events in place, and the load
// generator's WebSocket frame reader.
package wire
