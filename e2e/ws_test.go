package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"
)

// dialWS opens a WebSocket to url (http://…) and returns the connection,
// or fails the test with the status and body of a refused upgrade.
func dialWS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	conn, status, body := tryWS(t, url, nil)
	if conn == nil {
		t.Fatalf("WS %s: status %d: %s", url, status, body)
	}
	return conn
}

// tryWS attempts the upgrade with request headers h (a cookie, a bearer
// token); conn is nil when it was refused.
func tryWS(t *testing.T, url string, h map[string]string) (conn *websocket.Conn, status int, body string) {
	t.Helper()
	cli, err := client.NewClient(client.WithDialer(standard.NewDialer()), client.WithDialTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, resp := protocol.AcquireRequest(), protocol.AcquireResponse()
	req.SetRequestURI(url)
	req.SetMethod(http.MethodGet)
	u := &websocket.ClientUpgrader{}
	u.PrepareRequest(req)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if err := cli.Do(ctx, req, resp); err != nil {
		t.Fatalf("WS %s: %v", url, err)
	}
	if resp.StatusCode() != http.StatusSwitchingProtocols {
		return nil, resp.StatusCode(), string(resp.Body())
	}
	c, err := u.UpgradeResponse(req, resp)
	if err != nil {
		t.Fatalf("WS %s: upgrade: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, http.StatusSwitchingProtocols, ""
}

// readEnvelope reads one text frame within a hang guard.
func readEnvelope(t *testing.T, c *websocket.Conn, out any) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.ReadJSON(out); err != nil {
		t.Fatalf("read WS frame: %v", err)
	}
}
