package queueapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/queueclient"
)

// Pipelined posts whose replies span the three WebSocket length
// encodings (7-bit, 16-bit, 64-bit): the writer batches queued replies
// into one write, and every reply must still arrive whole and in its own
// frame.
func TestWSBatchedReplies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(nil)
	sizes := []int{1, 300, 70 << 10} // reply = echo of the post + ids
	const posts = 48
	var wg sync.WaitGroup
	errs := make(chan error, posts)
	for i := range posts {
		wg.Go(func() {
			body := fmt.Sprintf(`{"queue_name":"big","messages":[{"body":%q}]}`, strings.Repeat("x", sizes[i%len(sizes)]))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := c.Do(ctx, "message_post", h("p1", clientA), json.RawMessage(body))
			if err == nil && r.Status != http.StatusCreated {
				err = fmt.Errorf("status %d: %s", r.Status, r.Body)
			}
			var out struct {
				IDs []string `json:"message_ids"`
			}
			if err == nil {
				if err = json.Unmarshal(r.Body, &out); err == nil && len(out.IDs) != 1 {
					err = fmt.Errorf("reply %s has %d ids", r.Body, len(out.IDs))
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := wsDo(t, c, "queue_get_stats", h("p1", clientA), map[string]any{"queue_name": "big"})
	var st struct {
		Messages struct {
			Total int `json:"total"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(r.Body, &st); err != nil || st.Messages.Total != posts {
		t.Fatalf("stats %s (%v), want %d messages", r.Body, err, posts)
	}
}

// The writer, not the reader, answers pings and echoes the peer's close
// code (it alone writes, since it batches frames onto the socket).
func TestWSPongAndCloseEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET /v2/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Project-Id: p1\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	writeClientFrame(t, conn, 0x89, []byte("hi")) // ping
	if op, p := readServerFrame(t, br); op != 0x8A || string(p) != "hi" {
		t.Fatalf("got opcode %#x %q, want a pong with hi", op, p)
	}
	writeClientFrame(t, conn, 0x88, binary.BigEndian.AppendUint16(nil, 4001)) // close 4001
	op, p := readServerFrame(t, br)
	if op != 0x88 || len(p) < 2 || binary.BigEndian.Uint16(p) != 4001 {
		t.Fatalf("got opcode %#x %x, want a close echoing 4001", op, p)
	}
}

func writeClientFrame(t *testing.T, w io.Writer, b0 byte, p []byte) {
	t.Helper()
	mask := [4]byte{1, 2, 3, 4}
	f := []byte{b0, 0x80 | byte(len(p))}
	f = append(f, mask[:]...)
	for i, c := range p {
		f = append(f, c^mask[i%4])
	}
	if _, err := w.Write(f); err != nil {
		t.Fatal(err)
	}
}

// readServerFrame reads one frame, skipping server pings.
func readServerFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	for range 10 {
		var hd [2]byte
		if _, err := io.ReadFull(r, hd[:]); err != nil {
			t.Fatal(err)
		}
		n := int(hd[1] & 0x7f)
		if hd[1]&0x80 != 0 || n > 125 {
			t.Fatalf("unexpected frame header %x", hd)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatal(err)
		}
		if hd[0] != 0x89 {
			return hd[0], p
		}
	}
	t.Fatal("only pings from the server")
	return 0, nil
}

// Replies and deliveries are built in buffers the writer recycles once
// written: many frames of different sizes in flight on one connection,
// posts, reads and a subscription's deliveries, must each come back with
// their own contents, never another frame's bytes.
func TestWSRecycledBuffersKeepFramesApart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{nosync: true})
	c := e.dial(nil)
	sub := e.dial(nil)
	r := wsDo(t, sub, "subscription_create", h("p1", clientB), map[string]any{"queue_name": "sub", "options": map[string]any{"limit": 3}})
	if r.Status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
	const workers, rounds = 8, 24
	sizes := []int{1, 90, 3000, 7000, 9000} // around and past outBufMin
	want := make(map[string]string)         // delivered id → body
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				q := fmt.Sprintf("q%d", w)
				if i%3 == 0 {
					q = "sub"
				}
				body := strings.Repeat(string(rune('a'+(w+i)%26)), sizes[(w+i)%len(sizes)])
				if err := postAndRead(c, q, body, &mu, want); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := 0
	deadline := time.After(20 * time.Second)
	for seen < len(want) {
		select {
		case d := <-sub.Deliveries():
			for _, m := range d.Messages {
				var got string
				if err := json.Unmarshal(m.Body, &got); err != nil || got != want[m.ID] {
					t.Fatalf("delivery of %s: body %.40q (%v), want %.40q", m.ID, m.Body, err, want[m.ID])
				}
				seen++
			}
		case <-deadline:
			t.Fatalf("%d of %d messages delivered", seen, len(want))
		}
	}
}

// postAndRead posts body to q, checks the reply's href names q, reads the
// message back and checks its body; posts to "sub" are noted in want.
func postAndRead(c *queueclient.Client, q, body string, mu *sync.Mutex, want map[string]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, _ := json.Marshal(body)
	r, err := c.Do(ctx, "message_post", h("p1", clientA), map[string]any{"queue_name": q, "messages": []any{map[string]any{"body": json.RawMessage(raw)}}})
	if err != nil {
		return err
	}
	var posted struct {
		Resources []string `json:"resources"`
		IDs       []string `json:"message_ids"`
	}
	if err := json.Unmarshal(r.Body, &posted); err != nil || r.Status != http.StatusCreated || len(posted.IDs) != 1 ||
		posted.Resources[0] != "/v2/queues/"+q+"/messages/"+posted.IDs[0] {
		return fmt.Errorf("post to %s: %d %.200s (%v)", q, r.Status, r.Body, err)
	}
	if q == "sub" {
		mu.Lock()
		want[posted.IDs[0]] = body
		mu.Unlock()
		return nil
	}
	g, err := c.Do(ctx, "message_get", h("p1", clientA), map[string]any{"queue_name": q, "message_id": posted.IDs[0]})
	if err != nil {
		return err
	}
	var got struct {
		ID   string `json:"id"`
		Body string `json:"body"`
	}
	if err := json.Unmarshal(g.Body, &got); err != nil || got.ID != posted.IDs[0] || got.Body != body {
		return fmt.Errorf("get from %s: %d %.200s (%v), want body %.40q", q, g.Status, g.Body, err, body)
	}
	return nil
}
