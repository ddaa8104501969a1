package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"unicode/utf8"

	"github.com/hertz-contrib/websocket"

	"github.com/sidestream/sidestream/sidecar/api"
)

// connectWS runs one WebSocket connection and returns how many new events
// it delivered and why it ended.
func (f *follower) connectWS(ctx context.Context) (int, error) {
	conn, err := f.c.dialWS(ctx, f.resumeURL(), f.o.MaxEventBytes, f.o.IdleTimeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// Leaving says goodbye with a close frame, then stops the reader; the
	// server's answer is not awaited. done: the callback never outlives
	// this call.
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		conn.writeClose(CloseNormal, "")
		conn.stop()
	})
	defer func() {
		if !stop() {
			<-done
		}
	}()
	delivered := 0
	for {
		op, msg, err := conn.ReadMessage()
		if err != nil {
			return delivered, f.wsEndErr(err)
		}
		conn.extend()
		ev, err := decodeWSEvent(conn, op, msg)
		if err != nil {
			return delivered, err
		}
		ok, err := f.accept(ev)
		if err != nil {
			conn.writeClose(CloseNormal, "")
			return delivered, err
		}
		if ok {
			delivered++
		}
	}
}

// decodeWSEvent reads one message as an event envelope; anything else
// closes the connection with the reason.
func decodeWSEvent(conn *wsConn, op int, msg []byte) (api.Event, error) {
	var ev api.Event
	switch {
	case op != websocket.TextMessage:
		conn.writeClose(CloseUnsupported, "text frames only")
		return ev, fmt.Errorf("%w: the server sent a binary WebSocket message (events are JSON text)", ErrProtocol)
	case !utf8.Valid(msg):
		// The library leaves text messages unchecked (RFC 6455 §8.1).
		conn.writeClose(CloseInvalidPayload, "text message is not valid UTF-8")
		return ev, fmt.Errorf("%w: WebSocket text message is not valid UTF-8", ErrProtocol)
	}
	if err := json.Unmarshal(msg, &ev); err != nil {
		conn.writeClose(CloseUnsupported, "not an event envelope")
		return ev, fmt.Errorf("%w: WebSocket message is not an event envelope: %v", ErrProtocol, err)
	}
	return ev, nil
}

// wsEndErr classifies why a WebSocket ended: a server breaking the
// protocol, an event over our limit, or the server refusing what we sent
// (close 1002, 1003, 1007, 1008, 1009) is permanent; everything else
// (dropped connection, idle, the server leaving) is retried. The library
// already answered a close frame and failed a broken one with its close.
func (f *follower) wsEndErr(err error) error {
	var (
		ce *websocket.CloseError
		ne net.Error
	)
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return fmt.Errorf("%w: an event exceeds the client's limit of %d bytes", ErrProtocol, f.o.MaxEventBytes)
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		// The library's name for a connection that ended mid-stream.
		return fmt.Errorf("apiclient: websocket ended without a close frame: %w", err)
	case errors.As(err, &ce):
		out := &CloseError{Code: ce.Code, Reason: ce.Text}
		switch ce.Code {
		case CloseProtocolError, CloseUnsupported, CloseInvalidPayload, ClosePolicy, CloseTooBig:
			return fmt.Errorf("%w: %v", ErrProtocol, out)
		}
		return fmt.Errorf("apiclient: %w", out)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		// The library re-wraps a timeout as a net.Error of its own.
		return fmt.Errorf("apiclient: no data for %s: %w", f.o.IdleTimeout, os.ErrDeadlineExceeded)
	case errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("apiclient: websocket: %w", err)
	}
	// What is left is the library failing a frame that breaks RFC 6455
	// (it sent close 1002 already): the server would send it again.
	return fmt.Errorf("%w: %v", ErrProtocol, err)
}
