//go:build !linux

package streamhttp

import (
	"context"
	"errors"
	"net"
)

// HangupWatcher tells stream handlers when their client closed the
// connection. Outside Linux it watches nothing: Watch returns
// errors.ErrUnsupported and callers fall back to a reader per connection.
type HangupWatcher struct{}

// NewHangupWatcher returns a watcher that supports no connection.
func NewHangupWatcher() (*HangupWatcher, error) { return &HangupWatcher{}, nil }

// Watch returns errors.ErrUnsupported.
func (w *HangupWatcher) Watch(net.Conn, func()) (stop func(), err error) {
	return nil, errors.ErrUnsupported
}

// Close does nothing.
func (w *HangupWatcher) Close(context.Context) error { return nil }

// WatchReadable returns errors.ErrUnsupported.
func (w *HangupWatcher) WatchReadable(net.Conn, func()) (rearm func() error, stop func(), err error) {
	return nil, nil, errors.ErrUnsupported
}
