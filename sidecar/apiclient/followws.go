package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sidestream/sidestream/sidecar/api"
)

// connectWS runs one WebSocket connection and returns how many new events
// it delivered and why it ended.
func (f *follower) connectWS(ctx context.Context) (int, error) {
	conn, err := f.c.dialWS(ctx, f.resumeURL(), f.o.MaxEventBytes)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.dmu.Lock()
	conn.idle = f.o.IdleTimeout
	conn.dmu.Unlock()
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
		op, msg, err := conn.rd.readMessage()
		if err != nil {
			return delivered, f.wsEndErr(conn, err)
		}
		if op != opText {
			conn.writeClose(CloseUnsupported, "text frames only")
			return delivered, fmt.Errorf("%w: the server sent a binary WebSocket message (events are JSON text)", ErrProtocol)
		}
		var ev api.Event
		if err := json.Unmarshal(msg, &ev); err != nil {
			conn.writeClose(CloseUnsupported, "not an event envelope")
			return delivered, fmt.Errorf("%w: WebSocket message is not an event envelope: %v", ErrProtocol, err)
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

// wsEndErr classifies why a WebSocket ended: a server breaking the
// protocol, an event over our limit, or the server refusing what we sent
// (close 1002, 1003, 1007, 1008, 1009) is permanent; everything else
// (dropped connection, idle, the server leaving) is retried.
func (f *follower) wsEndErr(conn *wsConn, err error) error {
	var (
		fail *wsFailure
		ce   *CloseError
	)
	switch {
	case errors.As(err, &fail):
		conn.writeClose(fail.code, fail.msg)
		if fail.code == CloseTooBig {
			return fmt.Errorf("%w: an event exceeds the client's limit: %v", ErrProtocol, fail)
		}
		return fmt.Errorf("%w: %v", ErrProtocol, fail)
	case errors.As(err, &ce):
		switch ce.Code {
		case CloseProtocolError, CloseUnsupported, CloseInvalidPayload, ClosePolicy, CloseTooBig:
			return fmt.Errorf("%w: %v", ErrProtocol, ce)
		}
		return fmt.Errorf("apiclient: %w", ce)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("apiclient: no data for %s: %w", f.o.IdleTimeout, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("apiclient: websocket ended without a close frame: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("apiclient: websocket: %w", err)
}
