package wire_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/internal/wire"
)

// sinkConn returns the server side of a real WebSocket over loopback
// (Hertz, standard transport, hertz-contrib/websocket's upgrader) whose
// client reads and drops every message.
func sinkConn(b *testing.B) *websocket.Conn {
	b.Helper()
	conns, done := make(chan *websocket.Conn), make(chan struct{})
	up := websocket.HertzUpgrader{}
	addr := hertzServer(b, func(h *server.Hertz) {
		h.GET("/sink", func(_ context.Context, c *app.RequestContext) {
			_ = up.Upgrade(c, func(conn *websocket.Conn) { conns <- conn; <-done })
		})
	})
	client, err := wire.DialWS(context.Background(), "ws://"+addr+"/sink", wire.DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			_, r, err := client.NextReader()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r)
		}
	}()
	b.Cleanup(func() {
		close(done)
		client.Close()
		<-read
	})
	return <-conns
}

// batchEvents is what one Next hands a stream writer under fan-out load:
// 64 envelopes of 150 bytes.
var batchEvents = func() [][]byte {
	out := make([][]byte, 64)
	for i := range out {
		out[i] = bytes.Repeat([]byte("e"), 150)
	}
	return out
}()

// BenchmarkWSWriteBatched is how the stream and queue writers send: the
// frames of a batch appended by wire.AppendFrame, one write.
func BenchmarkWSWriteBatched(b *testing.B) {
	conn := sinkConn(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, p := range batchEvents {
			buf = wire.AppendFrame(buf, wire.OpText, p, nil)
		}
		if _, err := conn.NetConn().Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batchEvents))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWSWriteLibrary sends the same batch through the library, a
// WriteMessage per event (one write syscall each).
func BenchmarkWSWriteLibrary(b *testing.B) {
	conn := sinkConn(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range batchEvents {
			if err := conn.WriteMessage(websocket.TextMessage, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(batchEvents))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWSWritePrepared sends it as prepared messages (the library's
// encode-once path for broadcast), still a write per event.
func BenchmarkWSWritePrepared(b *testing.B) {
	conn := sinkConn(b)
	pms := make([]*websocket.PreparedMessage, len(batchEvents))
	for i, p := range batchEvents {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, p)
		if err != nil {
			b.Fatal(err)
		}
		pms[i] = pm
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, pm := range pms {
			if err := conn.WritePreparedMessage(pm); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(batchEvents))/b.Elapsed().Seconds(), "events/s")
}
