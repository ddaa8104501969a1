package queueapi

// Outgoing WebSocket frames (replies and deliveries) are built in
// buffers the writer gives back once it has written them: they were a
// third of the bytes the server allocated under queue load, and the
// bytes allocated set how often the collector runs. A free list, not a
// sync.Pool: a pool is emptied by every other collection, and putting a
// slice into one allocates its header.
//
// A frame handed to session.send belongs to the writer from then on:
// nothing else may keep it, since the writer recycles it after the write.
var outFree = make(chan []byte, 256)

const (
	outBufMin  = 8 << 10  // a new buffer's least room: a delivery of 10 fits
	outBufKeep = 64 << 10 // larger buffers are left to the collector
)

// outBuf returns an empty buffer with room for n bytes.
func outBuf(n int) []byte {
	select {
	case b := <-outFree:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, max(n, outBufMin))
}

// recycle gives back a buffer nothing refers to any more.
func recycle(b []byte) {
	if cap(b) < outBufMin || cap(b) > outBufKeep {
		return
	}
	select {
	case outFree <- b:
	default:
	}
}
