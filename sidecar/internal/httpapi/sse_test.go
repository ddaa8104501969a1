package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidestream/sidestream/sidecar/api"
)

func TestSSEHeadersRetryAndSeqIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SSERetry: 1500 * time.Millisecond})
	_, _, body := e.do("PUT", "/log", "")
	var created struct{ ID string }
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	e.publish(created.ID, 3)
	r := e.openSSE("/sse/log/" + created.ID + "?from=start")
	h := r.resp.Header
	if r.resp.StatusCode != 200 || h.Get("Content-Type") != "text/event-stream" ||
		h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("status %d headers %v", r.resp.StatusCode, h)
	}
	first, err := r.next()
	if err != nil || first.retry != "1500" {
		t.Fatalf("first block %+v, %v; want retry: 1500", first, err)
	}
	// The stream's events are on the default type (no event: field), so
	// EventSource.onmessage receives them.
	for i := 1; i <= 3; i++ {
		f := r.nextEvent(t)
		if f.id != strconv.Itoa(i) || f.event != "" || f.data != fmt.Sprintf(`{"n":%d}`, i-1) {
			t.Fatalf("event %d: %+v", i, f)
		}
	}
	// Live events follow the replay.
	e.publish(created.ID, 1)
	if f := r.nextEvent(t); f.id != "4" {
		t.Fatalf("live event: %+v", f)
	}
	// ?event_types=1 names every event's type.
	typed := e.openSSE("/sse/log/" + created.ID + "?from=start&event_types=1")
	if _, err := typed.next(); err != nil {
		t.Fatal(err)
	}
	if f := typed.nextEvent(t); f.id != "1" || f.event != "line" {
		t.Fatalf("typed event: %+v", f)
	}
	code, _, body := e.do("GET", "/sse/log/"+created.ID+"?event_types=yes", "")
	if code != 400 || !strings.Contains(string(body), `"field":"event_types"`) {
		t.Fatalf("event_types=yes: %d %s", code, body)
	}
}

func TestSSEResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.do("PUT", "/log", `{"guest":"vm-1"}`)
	id := e.ems.order[len(e.ems.order)-1]
	e.publish(id, 5)
	for _, tc := range []struct {
		name string
		path string
		hdr  []string
	}{
		{"header", "/sse/log/" + id, []string{"Last-Event-ID", "3"}},
		{"header wins over query", "/sse/log/" + id + "?after=1", []string{"Last-Event-ID", "3"}},
		{"last_event_id", "/sse/log/" + id + "?last_event_id=3", nil},
		{"after", "/sse/log/" + id + "?after=3", nil},
		{"api route", "/api/v1/streams/" + id + "/sse?after=3", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.openSSE(tc.path, tc.hdr...)
			for _, want := range []string{"4", "5"} {
				if f := r.nextEvent(t); f.id != want {
					t.Fatalf("got id %q, want %q", f.id, want)
				}
			}
		})
	}
	// No resume point: only new events.
	r := e.openSSE("/sse/log/" + id)
	if _, err := r.next(); err != nil { // retry block: the subscription exists now
		t.Fatal(err)
	}
	e.publish(id, 1)
	if f := r.nextEvent(t); f.id != "6" {
		t.Fatalf("from now: got %+v, want id 6", f)
	}
}

func TestSSEMalformedResumeIs400(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		path string
		hdr  []string
	}{
		{"/magic", []string{"Last-Event-ID", "abc"}},
		{"/magic", []string{"Last-Event-ID", "-1"}},
		{"/magic?last_event_id=1x", nil},
		{"/magic?after=", nil},
		{"/sse/fib?after=99999999999999999999999", nil},
		{"/time?from=yesterday", nil},
	} {
		code, hdr, body := e.do("GET", tc.path, "", tc.hdr...)
		if code != 400 || hdr.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%s %v: %d %s", tc.path, tc.hdr, code, body)
		}
		var eb api.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
			t.Fatalf("%s: body %s", tc.path, body)
		}
	}
}

func TestSSEGapEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	// "magic" keeps no history: only its 4096-event ring.
	e.publish("magic", 5000)
	r := e.openSSE("/magic?after=10")
	gap := r.nextEvent(t)
	if gap.event != "gap" || gap.id != "904" || gap.data != `{"from":11,"to":904}` {
		t.Fatalf("gap: %+v", gap)
	}
	if f := r.nextEvent(t); f.id != "905" || f.event != "" {
		t.Fatalf("after gap: %+v", f)
	}
}

func TestSSEHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: 10 * time.Millisecond})
	r := e.openSSE("/time")
	for i := 0; i < 100; i++ {
		f, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.comment == "hb" {
			return
		}
	}
	t.Fatal("no heartbeat comment in 100 blocks")
}

func TestSSEEndsWhenEmitterDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	_, _, body := e.do("POST", "/api/v1/emitters", `{"kind":"log","id":"doomed"}`)
	r := e.openSSE("/sse/log/doomed")
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if code, _, b := e.do("DELETE", "/api/v1/emitters/doomed", ""); code != 204 {
		t.Fatalf("delete: %d %s (create said %s)", code, b, body)
	}
	for i := 0; i < 100; i++ {
		if _, err := r.next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("want a clean end of the response, got %v", err)
			}
			return
		}
	}
	t.Fatal("response did not end")
}

func TestCloseEndsStreamsAndRefusesNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := e.openSSE("/magic")
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	ws, _ := e.dialWS("/api/v1/streams/time/ws")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := r.next(); err != nil {
			break
		}
	}
	_, _, err := ws.ReadMessage()
	if code := closeCode(err); code != 1001 {
		t.Fatalf("ws after shutdown: %v (code %d), want 1001", err, code)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(e.base + "/healthz"); err == nil {
		t.Fatal("server still accepts after Close")
	}
}

// A client that goes away releases its subscription even on a quiet
// stream (no write has to fail first).
func TestSSEClientGoneReleasesSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{HeartbeatInterval: time.Hour})
	st, err := e.ems.Stream(context.Background(), "time")
	if err != nil {
		t.Fatal(err)
	}
	r := e.openSSE("/time")
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if n := st.Subscribers(); n != 1 {
		t.Fatalf("subscribers %d, want 1", n)
	}
	r.resp.Body.Close()
	for i := 0; i < 2000 && st.Subscribers() != 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := st.Subscribers(); n != 0 {
		t.Fatalf("subscribers %d after the client left, want 0", n)
	}
}
