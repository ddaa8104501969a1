package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	hclient "github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/network/standard"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/hertz-contrib/websocket"
)

// handshakeTimeout bounds a WebSocket opening handshake.
const handshakeTimeout = 15 * time.Second

// wsClient returns the Hertz client that performs WebSocket handshakes
// (hertz-contrib/websocket upgrades Hertz responses only).
func (c *Client) wsClient() (*hclient.Client, error) {
	c.wsOnce.Do(func() {
		tc := c.tlsConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.ws, c.wsErr = hclient.NewClient(
			hclient.WithDialer(standard.NewDialer()),
			hclient.WithTLSConfig(tc),
			hclient.WithDialTimeout(handshakeTimeout),
		)
	})
	return c.ws, c.wsErr
}

// dialWS opens a WebSocket to url; a refused handshake is an *APIError.
func (c *Client) dialWS(url string) (*websocket.Conn, error) {
	cli, err := c.wsClient()
	if err != nil {
		return nil, fmt.Errorf("apiclient: websocket client: %w", err)
	}
	req, resp := protocol.AcquireRequest(), protocol.AcquireResponse()
	defer protocol.ReleaseRequest(req)
	req.SetRequestURI(url)
	req.SetMethod(http.MethodGet)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" {
		req.Header.SetUserAgentBytes([]byte(c.userAgent))
	}
	up := &websocket.ClientUpgrader{}
	up.PrepareRequest(req)
	if err := cli.DoTimeout(context.Background(), req, resp, handshakeTimeout); err != nil {
		protocol.ReleaseResponse(resp)
		return nil, fmt.Errorf("apiclient: websocket connect: %w", err)
	}
	if resp.StatusCode() != http.StatusSwitchingProtocols {
		defer protocol.ReleaseResponse(resp)
		return nil, parseAPIError(resp.StatusCode(), resp.Body())
	}
	// The connection now belongs to conn, which keeps resp.
	conn, err := up.UpgradeResponse(req, resp)
	if err != nil {
		return nil, fmt.Errorf("%w: websocket handshake: %v", ErrProtocol, err)
	}
	return conn, nil
}

// connectWS runs one WebSocket connection and returns how many new events
// it delivered and why it ended.
func (f *follower) connectWS(ctx context.Context) (int, error) {
	conn, err := f.c.dialWS(f.resumeURL())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = conn.SetReadDeadline(time.Now())
	})
	defer stop()
	conn.SetReadLimit(int64(f.o.MaxEventBytes))
	extend := func() { _ = conn.SetReadDeadline(time.Now().Add(f.o.IdleTimeout)) }
	conn.SetPingHandler(func(data string) error {
		extend()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	delivered := 0
	for {
		if ctx.Err() == nil {
			extend()
		}
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return delivered, wsEndErr(err)
		}
		if mt != websocket.TextMessage {
			return delivered, fmt.Errorf("%w: binary WebSocket frame", ErrProtocol)
		}
		var ev Event
		dec := json.NewDecoder(bytes.NewReader(msg))
		if err := dec.Decode(&ev); err != nil {
			return delivered, fmt.Errorf("%w: frame is not an event envelope: %v", ErrProtocol, err)
		}
		ok, err := f.accept(ev)
		if err != nil {
			return delivered, err
		}
		if ok {
			delivered++
		}
	}
}

// wsEndErr classifies why a WebSocket ended: the server refusing what we
// sent (1003, 1008, 1009) is permanent, everything else is retried.
func wsEndErr(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) {
		return fmt.Errorf("%w: an event exceeds the client's limit: %v", ErrProtocol, err)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseUnsupportedData, websocket.ClosePolicyViolation, websocket.CloseMessageTooBig:
			return fmt.Errorf("%w: server closed the WebSocket: %v", ErrProtocol, err)
		}
	}
	return fmt.Errorf("apiclient: websocket: %w", err)
}
