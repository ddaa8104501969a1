package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	ID    uint64
	Event string
	Data  string
}

// sseStream reads events from one SSE response.
type sseStream struct {
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
}

// openSSE connects to url (with an optional Last-Event-ID) and checks the
// response is an event stream.
func openSSE(t *testing.T, url string, lastEventID string) *sseStream {
	t.Helper()
	return openSSEWith(t, http.DefaultClient, url, lastEventID)
}

// openSSEWith is openSSE through client.
func openSSEWith(t *testing.T, client *http.Client, url string, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: status %d, content type %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	s := &sseStream{resp: resp, sc: sc, cancel: cancel}
	t.Cleanup(s.Close)
	return s
}

// Close ends the connection.
func (s *sseStream) Close() {
	s.cancel()
	s.resp.Body.Close()
}

// Next returns the next event (comments and retry lines are skipped).
func (s *sseStream) Next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	seen := false
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if seen {
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id:"):
			id, err := strconv.ParseUint(strings.TrimSpace(line[3:]), 10, 64)
			if err != nil {
				return ev, fmt.Errorf("bad id line %q", line)
			}
			ev.ID, seen = id, true
		case strings.HasPrefix(line, "event:"):
			ev.Event, seen = strings.TrimSpace(line[6:]), true
		case strings.HasPrefix(line, "data:"):
			data, seen = append(data, strings.TrimPrefix(line[5:], " ")), true
		}
	}
	if err := s.sc.Err(); err != nil {
		return ev, err
	}
	return ev, fmt.Errorf("stream ended")
}

// decode unmarshals an event's data.
func (e sseEvent) decode(t *testing.T, out any) {
	t.Helper()
	if err := json.Unmarshal([]byte(e.Data), out); err != nil {
		t.Fatalf("event %d (%s) data %q: %v", e.ID, e.Event, e.Data, err)
	}
}
