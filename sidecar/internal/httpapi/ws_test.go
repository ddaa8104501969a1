package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/api"
)

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

func readEnvelope(t *testing.T, c *websocket.Conn) api.Event {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("ws read: %v", err)
	}
	if mt != websocket.TextMessage {
		t.Fatalf("frame type %d, want text", mt)
	}
	var env api.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("frame %s is not one envelope: %v", b, err)
	}
	return env
}

func TestWSEnvelopesAndResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"w1"}`)
	e.publish("w1", 4)
	c, code := e.dialWS("/api/v1/streams/w1/ws?after=1")
	if c == nil {
		t.Fatalf("upgrade: %d", code)
	}
	for want := uint64(2); want <= 4; want++ {
		env := readEnvelope(t, c)
		if env.Stream != "w1" || env.Seq != want || env.Type != "line" || env.Time.IsZero() || len(env.Data) == 0 {
			t.Fatalf("envelope %+v, want seq %d", env, want)
		}
	}
	// {"resume": 0} replays from the oldest kept.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"resume":0}`)); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 4; want++ {
		if env := readEnvelope(t, c); env.Seq != want {
			t.Fatalf("after resume: seq %d, want %d", env.Seq, want)
		}
	}
	e.publish("w1", 1)
	if env := readEnvelope(t, c); env.Seq != 5 {
		t.Fatalf("live: seq %d, want 5", env.Seq)
	}
}

func TestWSCloseCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxWSFrame: 1024})
	for _, tc := range []struct {
		name string
		mt   int
		msg  []byte
		want int
	}{
		{"oversized", websocket.TextMessage, bytes.Repeat([]byte("x"), 2000), websocket.CloseMessageTooBig},
		{"not a resume", websocket.TextMessage, []byte(`{"resume":"soon"}`), websocket.ClosePolicyViolation},
		{"binary", websocket.BinaryMessage, []byte{1, 2}, websocket.CloseUnsupportedData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := e.dialWS("/ws/track/alice")
			if err := c.WriteMessage(tc.mt, tc.msg); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				_, _, err = c.ReadMessage()
			}
			if got := closeCode(err); got != tc.want {
				t.Fatalf("close: %v (code %d), want %d", err, got, tc.want)
			}
		})
	}
	t.Run("stream ended", func(t *testing.T) {
		e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"gone"}`)
		c, _ := e.dialWS("/api/v1/streams/gone/ws")
		time.Sleep(10 * time.Millisecond) // let the subscription start; either order ends in 1000
		e.do("DELETE", "/api/v1/emitters/gone", "")
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _, err := c.ReadMessage()
		if got := closeCode(err); got != websocket.CloseNormalClosure {
			t.Fatalf("close: %v, want 1000", err)
		}
	})
}

func TestEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxWSFrame: 4096})
	c, code := e.dialWS("/echo")
	if c == nil {
		t.Fatalf("upgrade: %d", code)
	}
	for _, m := range []struct {
		mt  int
		msg []byte
	}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, []byte{0, 1, 2, 255}}, {websocket.TextMessage, bytes.Repeat([]byte("y"), 4000)}} {
		if err := c.WriteMessage(m.mt, m.msg); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		mt, got, err := c.ReadMessage()
		if err != nil || mt != m.mt || !bytes.Equal(got, m.msg) {
			t.Fatalf("echo: type %d %q %v", mt, got[:min(len(got), 20)], err)
		}
	}
	if err := c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("z"), 5000)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.ReadMessage()
	if closeCode(err) != websocket.CloseMessageTooBig {
		t.Fatalf("oversized echo: %v, want close 1009", err)
	}
	// A plain GET on a WebSocket route is a JSON 400, not a hang.
	status, _, body := e.do("GET", "/echo", "")
	if status != 400 || !strings.Contains(string(body), "websocket_required") {
		t.Fatalf("plain GET /echo: %d %s", status, body)
	}
}

func TestTrackerPublishDeliversOverWSAndSSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ws, _ := e.dialWS("/ws/track/alice")
	sse := e.openSSE("/sse/track/alice")
	if _, err := sse.next(); err != nil { // retry block: subscribed
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // WS subscription starts after the upgrade; resume covers the race below anyway

	code, _, body := e.do("GET", "/track/alice?data=hello%20world", "")
	if code != 202 || string(body) != `{"seq":1}` {
		t.Fatalf("publish 1: %d %s", code, body)
	}
	code, _, body = e.do("POST", "/track/alice", `{"x": [1, 2]}`)
	if code != 202 || string(body) != `{"seq":2}` {
		t.Fatalf("publish 2: %d %s", code, body)
	}
	code, _, body = e.do("POST", "/track/alice?data=q", "")
	if code != 202 || string(body) != `{"seq":3}` {
		t.Fatalf("publish 3: %d %s", code, body)
	}
	wantData := []string{`"hello world"`, `{"x":[1,2]}`, `"q"`}
	// Resume from 0 on the socket so a late subscription still sees all.
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"resume":0}`)); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for seen < 3 {
		env := readEnvelope(t, ws)
		if env.Seq <= uint64(seen) {
			continue // delivered before the resume took effect
		}
		if env.Stream != "track:alice" || env.Seq != uint64(seen+1) || env.Type != "track" || string(env.Data) != wantData[seen] {
			t.Fatalf("ws api.Event %+v", env)
		}
		seen++
	}
	for i, want := range wantData {
		f := sse.nextEvent(t)
		if f.id != string(rune('1'+i)) || f.event != "" || f.data != want {
			t.Fatalf("sse %d: %+v", i, f)
		}
	}
	// History is kept and pageable.
	code, _, body = e.do("GET", "/api/v1/streams/track:alice/events?after=1&limit=1", "")
	var page struct {
		Events []api.Event
		Next   uint64
		Head   uint64
	}
	if code != 200 || json.Unmarshal(body, &page) != nil || len(page.Events) != 1 || page.Events[0].Seq != 2 || page.Next != 2 || page.Head != 3 {
		t.Fatalf("history page: %d %s", code, body)
	}
}
